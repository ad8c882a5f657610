"""Models shipped with the package (diffusers-like folders); see each folder's README.md."""
