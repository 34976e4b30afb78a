# Alternative implementations of a10_conv's exercises, graded by the project's tests and used
# to build the demo class. Instructor material: never copied to assignments/.

# %% conv2d: unfold_and_matmul [correct]
def conv2d(x, weight, bias=None, stride=1, padding=0):
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    cols = torch.nn.functional.unfold(x, (kh, kw), padding=padding, stride=stride)
    out = weight.reshape(c_out, -1) @ cols
    h_out = (h + 2 * padding - kh) // stride + 1
    w_out = (w + 2 * padding - kw) // stride + 1
    out = out.reshape(n, c_out, h_out, w_out)
    if bias is not None:
        out = out + bias[:, None, None]
    return out

# %% conv2d: python_loops_over_positions [correct]
def conv2d(x, weight, bias=None, stride=1, padding=0):
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    xp = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    h_out = (h + 2 * padding - kh) // stride + 1
    w_out = (w + 2 * padding - kw) // stride + 1
    rows = []
    for r in range(h_out):
        cols = []
        for c in range(w_out):
            window = xp[:, :, r * stride:r * stride + kh, c * stride:c * stride + kw]
            value = (window[:, None] * weight[None]).sum(dim=(2, 3, 4))
            if bias is not None:
                value = value + bias
            cols.append(value)
        rows.append(torch.stack(cols, dim=-1))
    return torch.stack(rows, dim=-2)

# %% conv2d: tensor_unfold_and_einsum_float64 [correct]
def conv2d(x, weight, bias=None, stride=1, padding=0):
    xp = torch.nn.functional.pad(x.double(), [padding] * 4)
    kh, kw = weight.shape[2:]
    windows = xp.unfold(2, kh, stride).unfold(3, kw, stride)  # [N, C, H_out, W_out, kh, kw]
    out = torch.einsum("nchwij,ocij->nohw", windows, weight.double())
    if bias is not None:
        out = out + bias.double().reshape(1, -1, 1, 1)
    return out.to(x.dtype)

# %% conv2d: loop_over_channels_with_cat_padding [correct]
def conv2d(x, weight, bias=None, stride=1, padding=0):
    n, c_in, h, w = x.shape
    if padding:
        zeros_rows = torch.zeros(n, c_in, padding, w, dtype=x.dtype, device=x.device)
        x = torch.cat([zeros_rows, x, zeros_rows], dim=2)
        zeros_cols = torch.zeros(n, c_in, x.shape[2], padding, dtype=x.dtype, device=x.device)
        x = torch.cat([zeros_cols, x, zeros_cols], dim=3)
    kh, kw = weight.shape[2], weight.shape[3]
    h_out = (x.shape[2] - kh) // stride + 1
    w_out = (x.shape[3] - kw) // stride + 1
    channels = []
    for o in range(weight.shape[0]):
        z = 0
        for k in range(c_in):
            for i in range(kh):
                for j in range(kw):
                    z = z + weight[o, k, i, j] * x[:, k, i:i + stride * h_out:stride, j:j + stride * w_out:stride][:, :h_out, :w_out]
        if bias is not None:
            z = z + bias[o]
        channels.append(z)
    return torch.stack(channels, dim=1)

# %% conv2d: material_ceil_output_size [wrong: conv2d_stride_and_padding, conv2d_gradients, conv2d_other_shapes_float64]
def conv2d(x, weight, bias=None, stride=1, padding=0):
    import math
    xp = torch.nn.functional.pad(x, [padding] * 4)
    c_out, _, kh, kw = weight.shape
    h_out = math.ceil((xp.shape[2] - kh) / stride) + 1
    w_out = math.ceil((xp.shape[3] - kw) / stride) + 1
    # windows past the edge see zeros, as if the input were padded further
    xp = torch.nn.functional.pad(xp, [0, stride, 0, stride])
    out = 0
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + stride * (h_out - 1) + 1:stride, j:j + stride * (w_out - 1) + 1:stride]
            out = out + torch.einsum("nchw,oc->nohw", patch, weight[:, :, i, j])
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out

# %% conv2d: flipped_kernel [wrong: conv2d_one_channel, conv2d_several_channels, conv2d_stride_and_padding, conv2d_gradients, conv2d_other_shapes_float64]
def conv2d(x, weight, bias=None, stride=1, padding=0):
    weight = weight.flip(-1, -2)
    cols = torch.nn.functional.unfold(x, weight.shape[2:], padding=padding, stride=stride)
    h_out = (x.shape[2] + 2 * padding - weight.shape[2]) // stride + 1
    w_out = (x.shape[3] + 2 * padding - weight.shape[3]) // stride + 1
    out = (weight.reshape(weight.shape[0], -1) @ cols).reshape(x.shape[0], -1, h_out, w_out)
    return out if bias is None else out + bias[:, None, None]

# %% conv2d: bias_added_per_input_channel [wrong: conv2d_several_channels, conv2d_stride_and_padding, conv2d_gradients, conv2d_other_shapes_float64]
def conv2d(x, weight, bias=None, stride=1, padding=0):
    xp = torch.nn.functional.pad(x, [padding] * 4)
    kh, kw = weight.shape[2:]
    windows = xp.unfold(2, kh, stride).unfold(3, kw, stride)
    out = 0
    for k in range(x.shape[1]):
        z = torch.einsum("nhwij,oij->nohw", windows[:, k], weight[:, k])
        if bias is not None:
            z = z + bias.view(1, -1, 1, 1)
        out = out + z
    return out

# %% conv2d: ignores_padding [wrong: conv2d_stride_and_padding, conv2d_gradients, conv2d_other_shapes_float64]
def conv2d(x, weight, bias=None, stride=1, padding=0):
    kh, kw = weight.shape[2:]
    windows = x.unfold(2, kh, stride).unfold(3, kw, stride)
    out = torch.einsum("nchwij,ocij->nohw", windows, weight)
    return out if bias is None else out + bias.view(1, -1, 1, 1)

# %% conv2d: first_input_channel_only [wrong: conv2d_several_channels, conv2d_stride_and_padding, conv2d_gradients, conv2d_other_shapes_float64]
def conv2d(x, weight, bias=None, stride=1, padding=0):
    xp = torch.nn.functional.pad(x, [padding] * 4)
    kh, kw = weight.shape[2:]
    windows = xp[:, 0].unfold(1, kh, stride).unfold(2, kw, stride)
    out = torch.einsum("nhwij,oij->nohw", windows, weight[:, 0])
    return out if bias is None else out + bias.view(1, -1, 1, 1)

# %% conv2d: values_through_numpy [wrong: conv2d_gradients]
def conv2d(x, weight, bias=None, stride=1, padding=0):
    import numpy as np
    xp = np.pad(x.detach().cpu().numpy(), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    w = weight.detach().cpu().numpy()
    kh, kw = w.shape[2:]
    h_out = (xp.shape[2] - kh) // stride + 1
    w_out = (xp.shape[3] - kw) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], h_out, w_out), dtype=xp.dtype)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + stride * (h_out - 1) + 1:stride, j:j + stride * (w_out - 1) + 1:stride]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    out = torch.from_numpy(out).to(x.device)
    return out if bias is None else out + bias.detach().view(1, -1, 1, 1)

# %% conv2d: float32_output [wrong: conv2d_gradients, conv2d_other_shapes_float64, conv2d_keeps_dtype_and_device]
def conv2d(x, weight, bias=None, stride=1, padding=0):
    cols = torch.nn.functional.unfold(x.float(), weight.shape[2:], padding=padding, stride=stride)
    h_out = (x.shape[2] + 2 * padding - weight.shape[2]) // stride + 1
    w_out = (x.shape[3] + 2 * padding - weight.shape[3]) // stride + 1
    out = (weight.float().reshape(weight.shape[0], -1) @ cols).reshape(x.shape[0], -1, h_out, w_out)
    return out if bias is None else out + bias.float()[:, None, None]

# %% conv2d: calls_functional_conv2d [wrong: conv2d_own_code]
def conv2d(x, weight, bias=None, stride=1, padding=0):
    return torch.nn.functional.conv2d(x, weight, bias, stride, padding)

# %% conv2d: output_on_the_cpu [wrong on cuda: conv2d_keeps_dtype_and_device]
def conv2d(x, weight, bias=None, stride=1, padding=0):
    kh, kw = weight.shape[2:]
    h_out = (x.shape[2] + 2 * padding - kh) // stride + 1
    w_out = (x.shape[3] + 2 * padding - kw) // stride + 1
    xp = torch.nn.functional.pad(x, [padding] * 4)
    out = torch.zeros(x.shape[0], weight.shape[0], h_out, w_out, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + stride * (h_out - 1) + 1:stride, j:j + stride * (w_out - 1) + 1:stride]
            out = out + torch.einsum("nchw,oc->nohw", patch, weight[:, :, i, j]).cpu()
    if bias is not None:
        out = out + bias.cpu().view(1, -1, 1, 1)
    return out

# %% max_pool2d: unfold_then_amax [correct]
def max_pool2d(x, kernel_size, stride=None):
    stride = kernel_size if stride is None else stride
    windows = x.unfold(2, kernel_size, stride).unfold(3, kernel_size, stride)
    return windows.amax(dim=(-2, -1))

# %% max_pool2d: python_loops_with_max [correct]
def max_pool2d(x, kernel_size, stride=None):
    if stride is None:
        stride = kernel_size
    h_out = (x.shape[2] - kernel_size) // stride + 1
    w_out = (x.shape[3] - kernel_size) // stride + 1
    rows = []
    for r in range(h_out):
        row = []
        for c in range(w_out):
            window = x[:, :, r * stride:r * stride + kernel_size, c * stride:c * stride + kernel_size]
            row.append(window.reshape(x.shape[0], x.shape[1], -1).max(dim=2).values)
        rows.append(torch.stack(row, dim=-1))
    return torch.stack(rows, dim=-2)

# %% max_pool2d: functional_unfold_and_max [correct]
def max_pool2d(x, kernel_size, stride=None):
    n, c, h, w = x.shape
    stride = stride or kernel_size
    cols = torch.nn.functional.unfold(x.reshape(n * c, 1, h, w), kernel_size, stride=stride)
    h_out = (h - kernel_size) // stride + 1
    w_out = (w - kernel_size) // stride + 1
    return cols.max(dim=1).values.reshape(n, c, h_out, w_out)

# %% max_pool2d: where_with_minus_infinity_start [correct]
def max_pool2d(x, kernel_size, stride=None):
    s = kernel_size if stride is None else stride
    h_out = (x.shape[2] - kernel_size) // s + 1
    w_out = (x.shape[3] - kernel_size) // s + 1
    best = torch.full((x.shape[0], x.shape[1], h_out, w_out), float("-inf"), dtype=x.dtype, device=x.device)
    for i in range(kernel_size):
        for j in range(kernel_size):
            window = x[:, :, i::s, j::s][:, :, :h_out, :w_out]
            best = torch.where(window > best, window, best)
    return best

# %% max_pool2d: stride_defaults_to_one [wrong: max_pool2d_default_stride, max_pool2d_gradient_default_stride]
def max_pool2d(x, kernel_size, stride=None):
    stride = 1 if stride is None else stride
    return x.unfold(2, kernel_size, stride).unfold(3, kernel_size, stride).amax(dim=(-2, -1))

# %% max_pool2d: material_ceil_output_size [wrong: max_pool2d_drops_incomplete_windows, max_pool2d_gradient, max_pool2d_other_shapes_float64]
def max_pool2d(x, kernel_size, stride=None):
    import math
    s = kernel_size if stride is None else stride
    h_out = math.ceil((x.shape[2] - kernel_size) / s) + 1
    w_out = math.ceil((x.shape[3] - kernel_size) / s) + 1
    out = torch.full((x.shape[0], x.shape[1], h_out, w_out), float("-inf"), dtype=x.dtype, device=x.device)
    for r in range(h_out):
        for c in range(w_out):
            window = x[:, :, r * s:r * s + kernel_size, c * s:c * s + kernel_size]
            out[:, :, r, c] = window.amax(dim=(-2, -1))
    return out

# %% max_pool2d: running_max_starts_at_zero [wrong: max_pool2d_default_stride, max_pool2d_overlapping_negative_windows, max_pool2d_drops_incomplete_windows, max_pool2d_other_shapes_float64]
def max_pool2d(x, kernel_size, stride=None):
    s = kernel_size if stride is None else stride
    h_out = (x.shape[2] - kernel_size) // s + 1
    w_out = (x.shape[3] - kernel_size) // s + 1
    best = x.new_zeros(x.shape[0], x.shape[1], h_out, w_out)
    for i in range(kernel_size):
        for j in range(kernel_size):
            best = torch.maximum(best, x[:, :, i:i + s * (h_out - 1) + 1:s, j:j + s * (w_out - 1) + 1:s])
    return best

# %% max_pool2d: average_instead_of_max [wrong: max_pool2d_default_stride, max_pool2d_overlapping_negative_windows, max_pool2d_drops_incomplete_windows, max_pool2d_gradient, max_pool2d_other_shapes_float64, max_pool2d_gradient_default_stride]
def max_pool2d(x, kernel_size, stride=None):
    s = kernel_size if stride is None else stride
    return x.unfold(2, kernel_size, s).unfold(3, kernel_size, s).mean(dim=(-2, -1))

# %% max_pool2d: max_over_channels_too [wrong: max_pool2d_default_stride, max_pool2d_overlapping_negative_windows, max_pool2d_gradient, max_pool2d_other_shapes_float64]
def max_pool2d(x, kernel_size, stride=None):
    s = kernel_size if stride is None else stride
    windows = x.unfold(2, kernel_size, s).unfold(3, kernel_size, s)
    return windows.amax(dim=(1, -2, -1), keepdim=True)[..., 0, 0].expand(-1, x.shape[1], -1, -1)

# %% max_pool2d: detached_values [wrong: max_pool2d_gradient, max_pool2d_gradient_default_stride]
def max_pool2d(x, kernel_size, stride=None):
    s = kernel_size if stride is None else stride
    return x.detach().unfold(2, kernel_size, s).unfold(3, kernel_size, s).amax(dim=(-2, -1))

# %% max_pool2d: calls_functional_max_pool2d [wrong: max_pool2d_own_code]
def max_pool2d(x, kernel_size, stride=None):
    return torch.nn.functional.max_pool2d(x, kernel_size, stride)

# %% max_pool2d: float32_output [wrong: max_pool2d_keeps_dtype_and_device]
def max_pool2d(x, kernel_size, stride=None):
    s = kernel_size if stride is None else stride
    return x.float().unfold(2, kernel_size, s).unfold(3, kernel_size, s).amax(dim=(-2, -1))

# %% layer_shapes: run_zeros_through_my_own_functions [correct]
def layer_shapes(input_shape, layers):
    h = torch.zeros(input_shape)
    shapes = []
    for layer in layers:
        if layer[0] == "conv":
            weight = torch.zeros(layer[1], h.shape[1], layer[2], layer[2])
            h = conv2d(h, weight, None, layer[3], layer[4])
        elif layer[0] == "pool":
            h = max_pool2d(h, layer[1], layer[2])
        elif layer[0] == "flatten":
            h = h.reshape(h.shape[0], -1)
        elif layer[0] == "linear":
            h = torch.zeros(h.shape[0], layer[1])
        shapes.append(tuple(h.shape))
    return shapes

# %% layer_shapes: math_floor_and_lists [correct]
def layer_shapes(input_shape, layers):
    import math
    n, *rest = input_shape
    result = []
    for kind, *args in layers:
        if kind == "conv":
            out, k, s, p = args
            rest = [out] + [math.floor((m + 2 * p - k) / s) + 1 for m in rest[1:]]
        elif kind == "pool":
            k, s = args
            s = s if s is not None else k
            rest = rest[:1] + [math.floor((m - k) / s) + 1 for m in rest[1:]]
        elif kind == "flatten":
            rest = [math.prod(rest)]
        elif kind == "linear":
            rest = [args[0]]
        result.append([n] + list(rest))
    return result

# %% layer_shapes: nn_modules_on_a_dummy_batch [correct]
def layer_shapes(input_shape, layers):
    x = torch.zeros(input_shape)
    out = []
    with torch.no_grad():
        for layer in layers:
            if layer[0] == "conv":
                x = nn.Conv2d(x.shape[1], layer[1], layer[2], stride=layer[3], padding=layer[4])(x)
            elif layer[0] == "pool":
                x = nn.MaxPool2d(layer[1], layer[2])(x)
            elif layer[0] == "relu":
                x = torch.relu(x)
            elif layer[0] == "flatten":
                x = nn.Flatten()(x)
            elif layer[0] == "linear":
                x = nn.Linear(x.shape[1], layer[1])(x)
            out.append(tuple(x.shape))
    return out

# %% layer_shapes: material_ceil_output_size [wrong: layer_shapes_strides_that_do_not_divide, layer_shapes_other_networks]
def layer_shapes(input_shape, layers):
    import math
    shape = tuple(input_shape)
    shapes = []
    for layer in layers:
        if layer[0] == "conv":
            _, out, k, s, p = layer
            shape = (shape[0], out) + tuple(math.ceil((m + 2 * p - k) / s) + 1 for m in shape[2:])
        elif layer[0] == "pool":
            k, s = layer[1], layer[2] or layer[1]
            shape = shape[:2] + tuple(math.ceil((m - k) / s) + 1 for m in shape[2:])
        elif layer[0] == "flatten":
            shape = (shape[0], math.prod(shape[1:]))
        elif layer[0] == "linear":
            shape = (shape[0], layer[1])
        shapes.append(shape)
    return shapes

# %% layer_shapes: pool_stride_defaults_to_one [wrong: layer_shapes_digits_cnn, layer_shapes_strides_that_do_not_divide, layer_shapes_other_networks]
def layer_shapes(input_shape, layers):
    shape = tuple(input_shape)
    shapes = []
    for layer in layers:
        if layer[0] == "conv":
            _, out, k, s, p = layer
            shape = (shape[0], out) + tuple((m + 2 * p - k) // s + 1 for m in shape[2:])
        elif layer[0] == "pool":
            k, s = layer[1], layer[2] or 1
            shape = shape[:2] + tuple((m - k) // s + 1 for m in shape[2:])
        elif layer[0] == "flatten":
            shape = (shape[0], shape[1] * shape[2] * shape[3])
        elif layer[0] == "linear":
            shape = (shape[0], layer[1])
        shapes.append(shape)
    return shapes

# %% layer_shapes: flatten_forgets_the_channels [wrong: layer_shapes_digits_cnn, layer_shapes_strides_that_do_not_divide, layer_shapes_other_networks]
def layer_shapes(input_shape, layers):
    shape = tuple(input_shape)
    shapes = []
    for layer in layers:
        if layer[0] == "conv":
            _, out, k, s, p = layer
            shape = (shape[0], out) + tuple((m + 2 * p - k) // s + 1 for m in shape[2:])
        elif layer[0] == "pool":
            k, s = layer[1], layer[2] or layer[1]
            shape = shape[:2] + tuple((m - k) // s + 1 for m in shape[2:])
        elif layer[0] == "flatten":
            shape = (shape[0], shape[2] * shape[3])
        elif layer[0] == "linear":
            shape = (shape[0], layer[1])
        shapes.append(shape)
    return shapes

# %% layer_shapes: flatten_includes_the_batch [wrong: layer_shapes_digits_cnn, layer_shapes_strides_that_do_not_divide, layer_shapes_other_networks]
def layer_shapes(input_shape, layers):
    shape = tuple(input_shape)
    shapes = []
    for layer in layers:
        if layer[0] == "conv":
            _, out, k, s, p = layer
            shape = (shape[0], out) + tuple((m + 2 * p - k) // s + 1 for m in shape[2:])
        elif layer[0] == "pool":
            k, s = layer[1], layer[2] or layer[1]
            shape = shape[:2] + tuple((m - k) // s + 1 for m in shape[2:])
        elif layer[0] == "flatten":
            shape = (shape[0] * shape[1] * shape[2] * shape[3],)
        elif layer[0] == "linear":
            shape = (1, layer[1])
        shapes.append(shape)
    return shapes

# %% layer_shapes: conv_forgets_padding [wrong: layer_shapes_digits_cnn, layer_shapes_strides_that_do_not_divide, layer_shapes_other_networks]
def layer_shapes(input_shape, layers):
    shape = tuple(input_shape)
    shapes = []
    for layer in layers:
        if layer[0] == "conv":
            _, out, k, s, p = layer
            shape = (shape[0], out) + tuple((m - k) // s + 1 for m in shape[2:])
        elif layer[0] == "pool":
            k, s = layer[1], layer[2] or layer[1]
            shape = shape[:2] + tuple((m - k) // s + 1 for m in shape[2:])
        elif layer[0] == "flatten":
            shape = (shape[0], shape[1] * shape[2] * shape[3])
        elif layer[0] == "linear":
            shape = (shape[0], layer[1])
        shapes.append(shape)
    return shapes

# %% layer_shapes: conv_keeps_the_input_channels [wrong: layer_shapes_digits_cnn, layer_shapes_strides_that_do_not_divide, layer_shapes_other_networks]
def layer_shapes(input_shape, layers):
    shape = tuple(input_shape)
    shapes = []
    for layer in layers:
        if layer[0] == "conv":
            _, out, k, s, p = layer
            shape = shape[:2] + tuple((m + 2 * p - k) // s + 1 for m in shape[2:])
        elif layer[0] == "pool":
            k, s = layer[1], layer[2] or layer[1]
            shape = shape[:2] + tuple((m - k) // s + 1 for m in shape[2:])
        elif layer[0] == "flatten":
            shape = (shape[0], shape[1] * shape[2] * shape[3])
        elif layer[0] == "linear":
            shape = (shape[0], layer[1])
        shapes.append(shape)
    return shapes
