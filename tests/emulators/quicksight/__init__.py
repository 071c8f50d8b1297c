"""QuickSight emulator for Backline's tests; run emulator.py, see README.md."""
