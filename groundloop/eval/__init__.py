"""Evaluation: CHAIR and coverage metrics, POPE, COCO synonyms and caption evaluation runs."""
