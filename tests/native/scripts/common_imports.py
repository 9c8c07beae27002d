"""Imports and uses modules with native parts; the hooks must not break any of them."""

import decimal
import json
import sqlite3
import ssl

import numpy as np

db = sqlite3.connect(":memory:")
db.execute("create table t (x)")
db.executemany("insert into t values (?)", [(i,) for i in range(1000)])
assert db.execute("select sum(x) from t").fetchone()[0] == 499500
assert json.loads(json.dumps({"a": [1, 2.5, "x"]})) == {"a": [1, 2.5, "x"]}
assert str(decimal.Decimal(1) / decimal.Decimal(7))[:8] == "0.142857"
context = ssl.create_default_context()
assert context.verify_mode == ssl.CERT_REQUIRED
matrix = np.arange(1_000_000, dtype=np.float64).reshape(1000, 1000)  # @matrix
assert float((matrix @ np.ones(1000)).sum()) == float(matrix.sum())
print("ok")
