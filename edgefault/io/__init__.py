"""File and stream input: recording readers (WAV, CSV, NPY/NPZ, MATLAB .mat, Parquet), dataset
manifests, the C-MAPSS reader, resampling and the simulated bearing used by the demo."""
