# Generates the .npy fixtures read by npy_test.go. Run once with a NumPy-equipped
# Python (Debian: /usr/bin/python3 gen.py); the test itself needs no Python.
# The expected values are recomputed independently in npy_test.go from the same
# formulas, so every file here is a check of the Go reader against real NumPy.
import numpy as np
from numpy.lib import format as fmt

def save(name, a, version=None):
    with open(name, "wb") as f:
        fmt.write_array(f, a, version=version)

# f4: i*0.1 - 1 rounded to float32, shape (2, 3)
save("f4_2x3.npy", (np.arange(6) * 0.1 - 1).astype("<f4").reshape(2, 3))
# f8: special values, shape (5,)
save("f8_5.npy", np.array([0.0, -0.0, 1e-300, -1.5e300, np.pi], dtype="<f8"))
# f8 scalar (shape ())
save("f8_scalar.npy", np.array(2.5, dtype="<f8"))
# f8 empty (shape (0, 3))
save("f8_0x3.npy", np.zeros((0, 3), dtype="<f8"))
# u1: (i*37) mod 256, shape (2, 2, 2)
save("u1_2x2x2.npy", ((np.arange(8) * 37) % 256).astype("|u1").reshape(2, 2, 2))
# i8: i*i - 7 * 10**12 ... small and large, shape (4,)
save("i8_4.npy", np.array([0, -1, 2**53, -(2**40) + 3], dtype="<i8"))
# i4 and i1
save("i4_3.npy", np.array([-2147483648, 0, 2147483647], dtype="<i4"))
save("i1_3.npy", np.array([-128, 0, 127], dtype="|i1"))
# bool
save("b1_3.npy", np.array([True, False, True]))
# explicit versions 2.0 and 3.0
save("f8_v2.npy", np.arange(4, dtype="<f8").reshape(2, 2), version=(2, 0))
save("f8_v3.npy", np.arange(4, dtype="<f8").reshape(2, 2), version=(3, 0))
# unsupported layouts
save("fortran.npy", np.asfortranarray(np.arange(6, dtype="<f8").reshape(2, 3)))
save("bigendian.npy", np.arange(3, dtype=">f8"))
# i8 beyond 2^53: not exactly representable in float64
save("i8_big.npy", np.array([2**53 + 1], dtype="<i8"))
