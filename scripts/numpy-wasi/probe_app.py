import numpy as np
a = np.arange(12, dtype=np.float64).reshape(3, 4)
RESULT = (a @ a.T).sum()
assert RESULT == 1134.0, RESULT  # = |column sums|^2
assert np.linalg.solve(np.array([[3.0, 1.0], [1.0, 2.0]]), np.array([9.0, 8.0])).round(6).tolist() == [2.0, 3.0]
assert abs(np.fft.fft(np.ones(8))[0] - 8) < 1e-12
assert np.sort(np.array([3, 1, 2])).tolist() == [1, 2, 3]
import wit_world
class WitWorld(wit_world.WitWorld):
    def answer(self) -> int:
        return int(np.arange(10).sum())
