"""repricing — owned by a later issue; intentionally empty until then."""
