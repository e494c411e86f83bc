"""The prediction side: `TitleClassifier`, predict.py's CLI, ONNX export and int8, Spark. Imports nothing
from train/, selection/ or reporting/ (a test walks every import)."""
