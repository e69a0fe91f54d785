-- A dialog row's version, raised by every save: a save names the version it read and writes only
-- if the row still has it (compare-and-set), so two lanes of one person (a button press and a typed
-- message are handled side by side) cannot overwrite each other's step.
ALTER TABLE dialogs ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
