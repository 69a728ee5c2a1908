"""horses-humans: get the Horses or Humans data set, train, compare, explain, serve and export classifiers."""

__version__ = "0.1.0"
