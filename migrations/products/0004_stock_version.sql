-- The version of inventory's stock row that `available` was last taken
-- from (inventory.stock_changed carries it): an older event arriving late
-- - a redelivery, two consumers side by side - must not undo a newer one.
ALTER TABLE products ADD COLUMN stock_version integer NOT NULL DEFAULT 0;
