"""`python pipelines/train_value.py ...` (also under `ray job submit -- ...`): runs `pipelines.value.run`,
the same as `python -m pipelines.value.run`."""

from pipelines.value.run import main

if __name__ == "__main__":
    main()
