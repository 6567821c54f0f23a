"""Data: FeatureSpec, catalogues, loaders, splits and negative sampling."""
