"""Jobs on a timer: sweeps over the database (what is due before now and not done)."""
