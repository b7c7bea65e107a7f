"""`python pipelines/self_train.py ...` (also under `ray job submit -- ...`): runs `pipelines.self_train.run`,
the same as `python -m pipelines.self_train.run`."""

from pipelines.self_train.run import main

if __name__ == "__main__":
    main()
