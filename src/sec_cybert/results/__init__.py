"""What a finished run means: the ablation table and its significance tests. Above the stages
whose predictions and perplexities it reads."""
