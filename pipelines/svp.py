"""`python pipelines/svp.py ...` (also under `ray job submit -- ...`): runs `pipelines.svp.run`,
the same as `python -m pipelines.svp.run`."""

from pipelines.svp.run import main

if __name__ == "__main__":
    main()
