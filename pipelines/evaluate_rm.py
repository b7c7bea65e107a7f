"""`python pipelines/evaluate_rm.py ...` (also under `ray job submit -- ...`): runs `pipelines.evaluate.rm`,
the same as `python -m pipelines.evaluate.rm`."""

from pipelines.evaluate.rm import main

if __name__ == "__main__":
    main()
