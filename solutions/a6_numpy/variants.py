# Alternative implementations of a6_numpy's exercises, graded by the project's tests and used to
# build the demo class. Instructor material: never copied to assignments/.

# %% sigmoid: where_on_both_safe_branches [correct]
def sigmoid(a):
    a = np.asarray(a) * 1.0                     # ints to float64; float32 stays float32
    pos = np.exp(-np.where(a >= 0, a, 0))       # exp of numbers <= 0 only
    neg = np.exp(np.where(a < 0, a, 0))
    return np.where(a >= 0, 1 / (1 + pos), neg / (1 + neg))

# %% sigmoid: exp_of_minus_logaddexp [correct]
def sigmoid(a):
    return np.exp(-np.logaddexp(0, -a))

# %% sigmoid: tanh_half_angle [correct]
def sigmoid(a):
    return 0.5 * (1 + np.tanh(a / 2))

# %% sigmoid: boolean_mask_float64_inside [correct]
def sigmoid(a):
    x = np.asarray(a, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1 + ex)
    return out

# %% sigmoid: clip_then_plain_formula [correct]
def sigmoid(a):
    return 1 / (1 + np.exp(-np.clip(a, -60, 60)))

# %% sigmoid: plain_formula_overflows [wrong: sigmoid_no_overflow_warnings]
def sigmoid(a):
    return 1 / (1 + np.exp(-a))

# %% sigmoid: where_computes_both_branches [wrong: sigmoid_no_overflow_warnings]
def sigmoid(a):
    return np.where(a >= 0, 1 / (1 + np.exp(-a)), np.exp(a) / (1 + np.exp(a)))

# %% sigmoid: clip_too_wide_for_float32 [wrong: sigmoid_no_overflow_warnings]
def sigmoid(a):
    return 1 / (1 + np.exp(-np.clip(a, -500, 500)))

# %% sigmoid: exp_over_one_plus_exp [wrong: sigmoid_large_inputs, sigmoid_float32]
def sigmoid(a):
    e = np.exp(a)
    return e / (1 + e)

# %% sigmoid: sign_slip [wrong: sigmoid_matches_reference, sigmoid_large_inputs, sigmoid_any_shape, sigmoid_python_float, sigmoid_float32]
def sigmoid(a):
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, e / (1 + e), 1 / (1 + e))

# %% sigmoid: returns_torch_tensor [wrong: sigmoid_matches_reference, sigmoid_large_inputs, sigmoid_any_shape, sigmoid_float32]
def sigmoid(a):
    import torch
    return torch.sigmoid(torch.as_tensor(a))

# %% sigmoid: math_exp_floats_only [wrong: sigmoid_matches_reference, sigmoid_python_float]
def sigmoid(a):
    import math
    return 1 / (1 + math.exp(-a))

# %% sigmoid: mask_needs_an_array [wrong: sigmoid_python_float]
def sigmoid(a):
    out = np.empty_like(a, dtype=np.float64)
    pos = a >= 0
    out[pos] = 1 / (1 + np.exp(-a[pos]))
    e = np.exp(a[~pos])
    out[~pos] = e / (1 + e)
    return out

# %% sigmoid: loop_over_first_axis [wrong: sigmoid_matches_reference, sigmoid_any_shape]
def sigmoid(a):
    out = np.zeros(len(a))
    for i in range(len(a)):
        e = np.exp(-abs(a[i]))
        out[i] = 1 / (1 + e) if a[i] >= 0 else e / (1 + e)
    return out

# %% logistic_grad: calls_sigmoid_of_exercise_1 [correct]
def logistic_grad(X, y, w, b):
    p = sigmoid(X @ w + b)
    return X.T @ (p - y) / len(y), np.mean(p - y)

# %% logistic_grad: einsum_and_sum_over_len [correct]
def logistic_grad(X, y, w, b):
    z = np.einsum("nd,d->n", X, w) + b
    p = np.exp(-np.logaddexp(0, -z))
    err = p - y
    return np.einsum("nd,n->d", X, err) / len(y), np.sum(err) / len(y)

# %% logistic_grad: error_row_times_X_float64_inside [correct]
def logistic_grad(X, y, w, b):
    X64, y64, w64 = X.astype(np.float64), y.astype(np.float64), w.astype(np.float64)
    z = X64 @ w64 + b
    p = 0.5 * (1 + np.tanh(z / 2))
    err = p - y64
    n = X64.shape[0]
    return (err @ X64 / n).astype(X.dtype), float(err.sum() / n)

# %% logistic_grad: keepdims_then_squeeze [correct]
def logistic_grad(X, y, w, b):
    z = np.dot(X, w) + b
    p = np.where(z >= 0, 1 / (1 + np.exp(-np.maximum(z, 0))), np.exp(np.minimum(z, 0)) / (1 + np.exp(np.minimum(z, 0))))
    err = p - y
    db = np.squeeze(np.mean(err, keepdims=True))          # a 0-d array
    return np.dot(X.T, err) / X.shape[0], db

# %% logistic_grad: sign_flipped [wrong: logistic_grad_matches_reference, logistic_grad_many_shapes, logistic_grad_float32, logistic_grad_confident_predictions]
def logistic_grad(X, y, w, b):
    e = np.exp(-np.logaddexp(0, -(X @ w + b)))
    return X.T @ (y - e) / len(y), float(np.mean(y - e))

# %% logistic_grad: forgets_1_over_n_in_dw [wrong: logistic_grad_matches_reference, logistic_grad_many_shapes, logistic_grad_float32]
def logistic_grad(X, y, w, b):
    p = np.exp(-np.logaddexp(0, -(X @ w + b)))
    return X.T @ (p - y), float(np.mean(p - y))

# %% logistic_grad: gradient_of_the_summed_loss [wrong: logistic_grad_matches_reference, logistic_grad_many_shapes, logistic_grad_float32]
def logistic_grad(X, y, w, b):
    p = np.exp(-np.logaddexp(0, -(X @ w + b)))
    return X.T @ (p - y), float(np.sum(p - y))

# %% logistic_grad: X_not_transposed [wrong: logistic_grad_matches_reference, logistic_grad_many_shapes, logistic_grad_float32]
def logistic_grad(X, y, w, b):
    p = np.exp(-np.logaddexp(0, -(X @ w + b)))
    return X @ (p - y) / len(y), float(np.mean(p - y))

# %% logistic_grad: forgets_to_sum_over_samples [wrong: logistic_grad_matches_reference, logistic_grad_float32]
def logistic_grad(X, y, w, b):
    p = np.exp(-np.logaddexp(0, -(X @ w + b)))
    return X * (p - y)[:, None] / len(y), float(np.mean(p - y))

# %% logistic_grad: db_per_sample [wrong: logistic_grad_matches_reference, logistic_grad_float32]
def logistic_grad(X, y, w, b):
    p = np.exp(-np.logaddexp(0, -(X @ w + b)))
    return X.T @ (p - y) / len(y), (p - y) / len(y)

# %% logistic_grad: db_as_one_element_array [wrong: logistic_grad_db_is_a_number]
def logistic_grad(X, y, w, b):
    p = np.exp(-np.logaddexp(0, -(X @ w + b)))
    err = p - y
    return X.T @ err / len(y), np.sum(err, keepdims=True) / len(y)

# %% logistic_grad: ignores_the_bias [wrong: logistic_grad_matches_reference, logistic_grad_many_shapes]
def logistic_grad(X, y, w, b):
    p = np.exp(-np.logaddexp(0, -(X @ w)))
    return X.T @ (p - y) / len(y), float(np.mean(p - y))

# %% logistic_grad: scales_X_in_place [wrong: logistic_grad_leaves_inputs_unchanged]
def logistic_grad(X, y, w, b):
    err = np.exp(-np.logaddexp(0, -(X @ w + b))) - y
    X *= err[:, None]
    return X.mean(axis=0), float(err.mean())

# %% logistic_grad: exp_over_one_plus_exp_inside [wrong: logistic_grad_confident_predictions]
def logistic_grad(X, y, w, b):
    e = np.exp(X @ w + b)
    p = e / (1 + e)
    return X.T @ (p - y) / len(y), float(np.mean(p - y))

# %% logistic_grad: returns_torch_tensors [wrong: logistic_grad_matches_reference, logistic_grad_many_shapes, logistic_grad_float32]
def logistic_grad(X, y, w, b):
    import torch
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y, dtype=torch.as_tensor(X).dtype)
    p = torch.sigmoid(Xt @ torch.as_tensor(w) + b)
    return Xt.T @ (p - yt) / len(yt), (p - yt).mean()

# %% gd_step: calls_logistic_grad [correct]
def gd_step(X, y, w, b, lr):
    dw, db = logistic_grad(X, y, w, b)
    return w - lr * dw, b - lr * db

# %% gd_step: copy_then_subtract_in_place [correct]
def gd_step(X, y, w, b, lr):
    p = 0.5 * (1 + np.tanh((X @ w + b) / 2))
    err = p - y
    w_new = w.copy()
    w_new -= lr * (err @ X) / len(y)
    return w_new, b - lr * np.sum(err) / len(y)

# %% gd_step: float64_inside_matmul [correct]
def gd_step(X, y, w, b, lr):
    X64 = X.astype(np.float64)
    z = np.matmul(X64, w.astype(np.float64)) + b
    p = np.exp(-np.logaddexp(0.0, -z))
    err = p - y
    grad = np.matmul(X64.T, err) / X64.shape[0]
    return (w - lr * grad).astype(w.dtype), float(b - lr * err.mean())

# %% gd_step: subtracts_in_place [wrong: gd_step_leaves_w_unchanged]
def gd_step(X, y, w, b, lr):
    p = np.exp(-np.logaddexp(0.0, -(X @ w + b)))
    w -= lr * X.T @ (p - y) / len(y)
    return w, b - lr * float(np.mean(p - y))

# %% gd_step: new_name_same_array [wrong: gd_step_leaves_w_unchanged]
def gd_step(X, y, w, b, lr):
    dw, db = logistic_grad(X, y, w, b)
    w_new = w
    w_new -= lr * dw
    return w_new, b - lr * db

# %% gd_step: climbs_the_gradient [wrong: gd_step_matches_reference, gd_step_decreases_the_loss, gd_step_float32_and_shapes]
def gd_step(X, y, w, b, lr):
    dw, db = logistic_grad(X, y, w, b)
    return w + lr * dw, b + lr * db

# %% gd_step: seed_update_rule_sign_mixed [wrong: gd_step_matches_reference, gd_step_decreases_the_loss, gd_step_float32_and_shapes]
def gd_step(X, y, w, b, lr):
    p = np.exp(-np.logaddexp(0.0, -(X @ w + b)))
    return w - lr * X.T @ (y - p) / len(y), b - lr * float(np.mean(y - p))

# %% gd_step: gradient_of_the_summed_loss [wrong: gd_step_matches_reference, gd_step_decreases_the_loss, gd_step_float32_and_shapes]
def gd_step(X, y, w, b, lr):
    p = np.exp(-np.logaddexp(0.0, -(X @ w + b)))
    return w - lr * X.T @ (p - y), b - lr * float(np.sum(p - y))

# %% gd_step: forgets_the_bias [wrong: gd_step_matches_reference, gd_step_decreases_the_loss, gd_step_float32_and_shapes]
def gd_step(X, y, w, b, lr):
    dw, db = logistic_grad(X, y, w, b)
    return w - lr * dw, b

# %% gd_step: returns_the_step [wrong: gd_step_matches_reference, gd_step_decreases_the_loss, gd_step_float32_and_shapes]
def gd_step(X, y, w, b, lr):
    dw, db = logistic_grad(X, y, w, b)
    return lr * dw, lr * db

# %% gd_step: returns_torch_tensors [wrong: gd_step_matches_reference, gd_step_decreases_the_loss, gd_step_float32_and_shapes]
def gd_step(X, y, w, b, lr):
    import torch
    dw, db = logistic_grad(X, y, w, b)
    return torch.as_tensor(w - lr * dw), torch.tensor(b - lr * db)
