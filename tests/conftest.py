import sys
from pathlib import Path

# pipelines/ and actors/ are top-level folders, not installed packages
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
