"""The run-directory contract: every RUN/* file name, the store, the JSON schemas, the data record and the
model card. Imports core, data, models and config."""
