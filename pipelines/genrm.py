"""`python pipelines/genrm.py ...` (also under `ray job submit -- ...`): runs `pipelines.genrm.run`,
the same as `python -m pipelines.genrm.run`."""

from pipelines.genrm.run import main

if __name__ == "__main__":
    main()
