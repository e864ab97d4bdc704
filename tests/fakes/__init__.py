"""In-process fakes (AWS CodeArtifact, SigV4 verification, private PyPI index) for tests."""
