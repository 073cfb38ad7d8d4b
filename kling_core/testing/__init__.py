"""The provider contract test kit, shipped in the wheel for plugin authors."""
