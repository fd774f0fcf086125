"""The data path: documents become token blocks (chunking, packing) and blocks become masked
batches (word split, masking, the collator, document attention). Below the stages that use it."""
