-- Reports read orders by creation time (`emporium report sales`).
CREATE INDEX orders_by_created ON orders (created_at, id);
