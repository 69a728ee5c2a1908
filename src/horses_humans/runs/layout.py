"""The run-directory contract: the name of every file and folder a run holds, defined here once.

RUN/
  config.json, labels.json, environment.json, data.json   written when training starts
  history.json                                          one row per finished epoch
  model.keras, model-best.keras                         the last and the best epoch's float32 checkpoints
  metrics.json                                          written last: it makes the run finished
  calibration.json                                      temperature and unsure rule (calibrate, unsure)
  MODEL_CARD.md, evaluation.json, predictions.csv       evaluate's latest answers and the card they feed
  evaluations/NAME.json                                 one per evaluated split or --data folder, kept
  resume/state.json (+ weights)                         an unfinished run's backup (train --resume)
  export/NAME/{export.json, labels.json, MODEL FILE,    each published export, its model card and a README with
               MODEL_CARD.md, README.md}                clients; export/exports.md their table
  report/report.html, explain/, tensorboard/            what report, explain and --tensorboard write
"""

from __future__ import annotations

MODEL_FILE = "model.keras"  # the last epoch's weights
BEST_MODEL_FILE = "model-best.keras"  # the best epoch's weights by CHECKPOINT_MONITOR
CHECKPOINT_FILES = {"best": BEST_MODEL_FILE, "last": MODEL_FILE}
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
LABELS_FILE = "labels.json"
ENVIRONMENT_FILE = "environment.json"
DATA_FILE = "data.json"  # the data folder, its layout, and the exact files of each side (see record.py)
CALIBRATION_FILE = "calibration.json"  # the fitted temperature (calibration.py), and other helpers' keys
MODEL_CARD_FILE = "MODEL_CARD.md"
EVALUATION_FILE = "evaluation.json"  # the latest `evaluate`'s metrics
PREDICTIONS_FILE = "predictions.csv"  # the latest `evaluate`'s per-image rows
EVALUATIONS_DIR = "evaluations"  # one JSON per evaluated split or --data folder (see evaluation.evaluate_run)
# A run is finished when METRICS_FILE exists. Until then RESUME_DIR holds Keras' BackupAndRestore state, so a killed
# `train` continues with `train --resume RUN`; atomic.py's temporary files are named ".NAME.*.tmp*".
RESUME_DIR = "resume"
RESUME_STATE_FILE = "state.json"  # in RESUME_DIR: {stage, index, stage_start, epochs, done, weights, best, counters}
TEMP_GLOB = ".*.tmp*"
EXPORT_DIR = "export"  # RUN/export/NAME/: where export publishes each export that passed its parity check
EXPORT_RECORD_FILE = "export.json"  # in RUN/export/NAME/: where it came from, its parity, its files' sha256
EXPORT_LABELS_FILE = LABELS_FILE  # in RUN/export/NAME/: the run's labels plus how to feed this model file
EXPORTS_FILE = "exports.md"  # in RUN/export/: the trade-off table of every export
REPORT_DIR = "report"  # RUN/report/report.html and its figures
EXPLAIN_DIR = "explain"  # RUN/explain/, unless --out says otherwise
TENSORBOARD_DIR = "tensorboard"  # RUN/tensorboard/{train,validation}: `tensorboard --logdir RUNS_DIR`
