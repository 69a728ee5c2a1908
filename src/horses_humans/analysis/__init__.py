"""Looking at runs: evaluation metrics, explanations (Grad-CAM), plots, the report, comparisons and
real-photo scoring. Imports inference and below."""
