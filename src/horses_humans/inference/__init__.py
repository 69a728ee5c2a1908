"""Answers from a trained run: the Predictor, runtimes (Keras, ONNX, TFLite), calibration, the unsure
rule, result writers and the Ray engine. Imports runs and below."""
