# Alternative implementations of a5_cnn's exercises, graded by the project's tests and used
# to build the demo class. Instructor material: never copied to assignments/.

# %% conv_output_size: math_floor [correct]
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    if dilation * (kernel_size - 1) + 1 > size + 2 * padding:
        raise ValueError("the kernel does not fit in the padded input")
    return math.floor((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1

# %% conv_output_size: int_of_division [correct]
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    padded = size + 2 * padding
    reach = dilation * (kernel_size - 1)
    if reach >= padded:
        raise ValueError(f"kernel reaching {reach + 1} pixels is longer than {padded}")
    return int((padded - reach - 1) / stride) + 1

# %% conv_output_size: count_window_starts [correct]
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    width = dilation * (kernel_size - 1) + 1
    count, start = 0, 0
    while start + width <= size + 2 * padding:
        count += 1
        start += stride
    if count == 0:
        raise ValueError("kernel larger than the padded input")
    return count

# %% conv_output_size: forgot_plus_one [wrong: conv_output_size_basic, conv_output_size_stride_and_padding]
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    if dilation * (kernel_size - 1) + 1 > size + 2 * padding:
        raise ValueError("the kernel does not fit in the padded input")
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride

# %% conv_output_size: ceil_as_in_the_notes [wrong: conv_output_size_stride_and_padding, conv_output_size_max_pooling, conv_output_size_raises_when_kernel_does_not_fit]
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return math.ceil((size + 2 * padding - kernel_size) / stride) + 1

# %% conv_output_size: ceil_full_formula [wrong: conv_output_size_stride_and_padding, conv_output_size_max_pooling]
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    effective = dilation * (kernel_size - 1) + 1
    if effective > size + 2 * padding:
        raise ValueError("kernel does not fit")
    return math.ceil((size + 2 * padding - effective) / stride) + 1

# %% conv_output_size: ignores_dilation [wrong: conv_output_size_dilation, conv_output_size_raises_when_kernel_does_not_fit]
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    if kernel_size > size + 2 * padding:
        raise ValueError("kernel does not fit")
    return (size + 2 * padding - kernel_size) // stride + 1

# %% conv_output_size: ignores_padding [wrong: conv_output_size_stride_and_padding, conv_output_size_max_pooling, conv_output_size_kernel_that_just_fits]
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    effective = dilation * (kernel_size - 1) + 1
    if effective > size:
        raise ValueError("kernel does not fit")
    return (size - effective) // stride + 1

# %% conv_output_size: true_division [wrong: conv_output_size_returns_int, conv_output_size_stride_and_padding]
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    effective = dilation * (kernel_size - 1) + 1
    if effective > size + 2 * padding:
        raise ValueError("kernel does not fit")
    return (size + 2 * padding - effective) / stride + 1

# %% conv_output_size: no_value_error [wrong: conv_output_size_raises_when_kernel_does_not_fit]
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1

# %% conv_output_size: raises_when_kernel_fits_exactly [wrong: conv_output_size_kernel_that_just_fits]
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    effective = dilation * (kernel_size - 1) + 1
    if effective >= size + 2 * padding:
        raise ValueError("kernel does not fit")
    return (size + 2 * padding - effective) // stride + 1

# %% conv_output_size: wrong_error_type [wrong: conv_output_size_raises_when_kernel_does_not_fit]
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise RuntimeError("kernel does not fit")
    return out

# %% train_model: zero_grad_after_step [correct]
def train_model(model, loader, criterion, optimizer, device, epochs=1):
    model = model.to(device)
    model.train()
    history = []
    for epoch in range(epochs):
        total, batches = 0.0, 0
        for inputs, labels in loader:
            inputs = inputs.to(device)
            labels = labels.to(device)
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            total += loss.item()
            batches += 1
        history.append(total / batches)
    return history

# %% train_model: set_to_none_statistics_mean [correct]
def train_model(model, loader, criterion, optimizer, device, epochs=1):
    import statistics
    model.train()
    model.to(device)
    result = []
    for _ in range(epochs):
        losses = []
        for batch in loader:
            x, y = (t.to(device, non_blocking=True) for t in batch)
            optimizer.zero_grad(set_to_none=True)
            out = model(x)
            loss = criterion(out, y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        result.append(statistics.mean(losses))
    return result

# %% train_model: model_zero_grad_tensor_of_losses [correct]
def train_model(model, loader, criterion, optimizer, device, epochs=1):
    model.to(device).train()
    means = torch.zeros(epochs, dtype=torch.float64)
    for epoch in range(epochs):
        batch_losses = []
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            model.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            batch_losses.append(loss.detach().double())
        means[epoch] = torch.stack(batch_losses).mean().cpu()
    return means

# %% train_model: sample_weighted_0dim_tensors [correct]
def train_model(model, loader, criterion, optimizer, device, epochs=1):
    model.to(device)
    model.train()
    out = []
    for _ in range(epochs):
        running, seen = torch.zeros((), device=device), 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            running += loss.detach() * len(x)
            seen += len(x)
        out.append(running / seen)
    return out

# %% train_model: no_zero_grad [wrong: train_model_losses, train_model_final_weights, train_model_three_epochs_many_batches]
def train_model(model, loader, criterion, optimizer, device, epochs=1):
    model.to(device)
    model.train()
    epoch_losses = []
    for _ in range(epochs):
        batch_losses = []
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            batch_losses.append(loss.item())
        epoch_losses.append(sum(batch_losses) / len(batch_losses))
    return epoch_losses

# %% train_model: no_train_mode [wrong: train_model_sets_train_mode]
def train_model(model, loader, criterion, optimizer, device, epochs=1):
    model.to(device)
    epoch_losses = []
    for _ in range(epochs):
        batch_losses = []
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            batch_losses.append(loss.item())
        epoch_losses.append(sum(batch_losses) / len(batch_losses))
    return epoch_losses

# %% train_model: sum_of_batch_losses [wrong: train_model_losses, train_model_three_epochs_many_batches]
def train_model(model, loader, criterion, optimizer, device, epochs=1):
    model.to(device)
    model.train()
    cost_list = []
    for _ in range(epochs):
        cost = 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            cost += loss.item()
        cost_list.append(cost)
    return cost_list

# %% train_model: last_batch_loss [wrong: train_model_losses, train_model_three_epochs_many_batches]
def train_model(model, loader, criterion, optimizer, device, epochs=1):
    model.to(device)
    model.train()
    epoch_losses = []
    for _ in range(epochs):
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
        epoch_losses.append(loss.item())
    return epoch_losses

# %% train_model: every_batch_loss [wrong: train_model_losses, train_model_three_epochs_many_batches]
def train_model(model, loader, criterion, optimizer, device, epochs=1):
    model.to(device)
    model.train()
    losses = []
    for _ in range(epochs):
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses

# %% train_model: batches_not_moved [wrong: train_model_moves_every_batch]
def train_model(model, loader, criterion, optimizer, device, epochs=1):
    model.to(device)
    model.train()
    epoch_losses = []
    for _ in range(epochs):
        batch_losses = []
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            batch_losses.append(loss.item())
        epoch_losses.append(sum(batch_losses) / len(batch_losses))
    return epoch_losses

# %% train_model: model_not_moved [wrong on cuda: train_model_runs_on_device, train_model_losses]
def train_model(model, loader, criterion, optimizer, device, epochs=1):
    model.train()
    epoch_losses = []
    for _ in range(epochs):
        batch_losses = []
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            batch_losses.append(loss.item())
        epoch_losses.append(sum(batch_losses) / len(batch_losses))
    return epoch_losses

# %% train_model: labels_not_moved [wrong: train_model_moves_every_batch]
def train_model(model, loader, criterion, optimizer, device, epochs=1):
    model.to(device)
    model.train()
    epoch_losses = []
    for _ in range(epochs):
        batch_losses = []
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x.to(device)), y)
            loss.backward()
            optimizer.step()
            batch_losses.append(loss.item())
        epoch_losses.append(sum(batch_losses) / len(batch_losses))
    return epoch_losses

# %% train_model: step_before_backward [wrong: train_model_losses, train_model_final_weights]
def train_model(model, loader, criterion, optimizer, device, epochs=1):
    model.to(device)
    model.train()
    epoch_losses = []
    for _ in range(epochs):
        batch_losses = []
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            optimizer.step()
            loss.backward()
            batch_losses.append(loss.item())
        epoch_losses.append(sum(batch_losses) / len(batch_losses))
    return epoch_losses

# %% evaluate: torch_max [correct]
def evaluate(model, loader, device):
    model = model.to(device)
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            _, yhat = torch.max(model(x), 1)
            correct += (yhat == y).sum().item()
    return correct / len(loader.dataset)

# %% evaluate: inference_mode_tensor_result [correct]
def evaluate(model, loader, device):
    model.to(device)
    model.eval()
    hits = torch.zeros((), device=device)
    count = 0
    with torch.inference_mode():
        for inputs, labels in loader:
            inputs, labels = inputs.to(device, non_blocking=True), labels.to(device)
            hits += (model(inputs).argmax(1) == labels).float().sum()
            count += labels.shape[0]
    return (hits / count).cpu()

# %% evaluate: decorator_and_cpu_compare [correct]
@torch.no_grad()
def evaluate(model, loader, device):
    model.eval().to(device)
    predictions, targets = [], []
    for x, y in loader:
        predictions.append(model(x.to(device)).argmax(dim=-1).cpu())
        targets.append(y.cpu())
    return float((torch.cat(predictions) == torch.cat(targets)).double().mean())

# %% evaluate: no_eval_mode [wrong: evaluate_uses_eval_mode, evaluate_accuracy]
def evaluate(model, loader, device):
    model.to(device)
    correct, total = 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            correct += (model(x).argmax(dim=1) == y).sum().item()
            total += len(y)
    return correct / total

# %% evaluate: no_no_grad [wrong: evaluate_without_gradients]
def evaluate(model, loader, device):
    model.to(device)
    model.eval()
    correct, total = 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        correct += (model(x).argmax(dim=1) == y).sum().item()
        total += len(y)
    return correct / total

# %% evaluate: returns_count [wrong: evaluate_accuracy, evaluate_smaller_last_batch]
def evaluate(model, loader, device):
    model.to(device)
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            correct += (model(x).argmax(dim=1) == y).sum().item()
    return correct

# %% evaluate: returns_percentage [wrong: evaluate_accuracy, evaluate_smaller_last_batch]
def evaluate(model, loader, device):
    model.to(device)
    model.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            correct += (model(x).argmax(dim=1) == y).sum().item()
            total += len(y)
    return 100.0 * correct / total

# %% evaluate: argmax_over_batch_dim [wrong: evaluate_accuracy]
def evaluate(model, loader, device):
    model.to(device)
    model.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            correct += (model(x).argmax(dim=0) == y).sum().item()
            total += len(y)
    return correct / total

# %% evaluate: mean_of_batch_accuracies [wrong: evaluate_smaller_last_batch]
def evaluate(model, loader, device):
    model.to(device)
    model.eval()
    accuracies = []
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            accuracies.append((model(x).argmax(dim=1) == y).float().mean().item())
    return sum(accuracies) / len(accuracies)

# %% evaluate: batches_not_moved [wrong: evaluate_runs_on_device]
def evaluate(model, loader, device):
    model.to(device)
    model.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(dim=1) == y).sum().item()
            total += len(y)
    return correct / total
