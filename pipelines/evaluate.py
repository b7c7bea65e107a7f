"""`python pipelines/evaluate.py ...` (also under `ray job submit -- ...`): runs `pipelines.evaluate.run`,
the same as `python -m pipelines.evaluate.run`."""

from pipelines.evaluate.run import main

if __name__ == "__main__":
    main()
