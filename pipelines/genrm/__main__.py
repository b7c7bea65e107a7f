"""`python -m pipelines.genrm`: `pipelines.genrm.run`."""

from pipelines.genrm.run import main

main()
