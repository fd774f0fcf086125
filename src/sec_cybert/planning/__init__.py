"""What a run will cost before it runs: stage plans, the memory model, FLOPs. Below the stages,
which read their step settings and warmup from here."""
