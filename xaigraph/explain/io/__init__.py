"""What a run reads and writes: its OUT_DIR (`rundir`: lock, checks, resume, run.json,
results.jsonl) and the one results.jsonl record (`record`)."""
