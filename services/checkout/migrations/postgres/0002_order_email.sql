-- The customer's e-mail (from the access token), for order notifications.
ALTER TABLE orders ADD COLUMN email TEXT;
