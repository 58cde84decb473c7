"""Preference data: sources (local parquet/arrow/folders or a `datasets` name), schemas (Pick-a-Pic v2,
generic pairs, single samples), a scan that counts every unusable row, the paired-augmentation dataset
and an on-disk cache of encoded samples."""
