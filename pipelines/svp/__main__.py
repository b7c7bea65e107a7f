"""`python -m pipelines.svp`: `pipelines.svp.run`."""

from pipelines.svp.run import main

main()
