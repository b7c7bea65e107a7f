"""`python pipelines/caption.py ...` (also under `ray job submit -- ...`): runs `pipelines.evaluate.caption`,
the same as `python -m pipelines.evaluate.caption`."""

from pipelines.evaluate.caption import main

if __name__ == "__main__":
    main()
