"""Data: annotation readers for the real formats, feature readers, the synthetic benchmark, Dataset/collate."""
from wsg.data.annotations import read_annotations, split_validation
from wsg.data.benchmark import Benchmark, load_benchmark, load_events, load_synthetic
from wsg.data.dataset import EpochShuffle, GroundingDataset, collate, make_loader
from wsg.data.features import FeatureStore, HDF5Features, MissingFeaturesError, NpyFeatures, open_features, resample

__all__ = [
    "read_annotations", "split_validation", "Benchmark", "load_benchmark", "load_synthetic", "load_events",
    "GroundingDataset", "EpochShuffle", "collate", "make_loader", "FeatureStore", "HDF5Features", "NpyFeatures",
    "MissingFeaturesError", "open_features", "resample",
]
