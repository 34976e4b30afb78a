# Alternative implementations of a12_gpu_training's exercises, for `grade audit`, the project's
# tests and the demo class. Instructor material: never released.

# %% validate: concatenate_then_one_loss [correct]
def validate(model, loader, criterion, device):
    mode = model.training
    model.eval()
    all_scores, all_labels = [], []
    with torch.no_grad():
        for x, y in loader:
            all_scores.append(model(x.to(device)))
            all_labels.append(y.to(device))
    scores, labels = torch.cat(all_scores), torch.cat(all_labels)
    loss = criterion(scores, labels).item()
    accuracy = (scores.argmax(dim=1) == labels).float().mean().item()
    model.train(mode)
    return loss, accuracy

# %% validate: inference_mode_scores_to_cpu [correct]
def validate(model, loader, criterion, device):
    was_training = model.training
    model.eval()
    loss_sum, hits, seen = 0.0, 0, 0
    with torch.inference_mode():
        for inputs, labels in loader:
            scores = model(inputs.to(device, non_blocking=True)).cpu()
            loss_sum += float(criterion(scores, labels)) * labels.numel()
            hits += int((scores.argmax(1) == labels).sum())
            seen += labels.numel()
    if was_training:
        model.train()
    return loss_sum / seen, hits / seen

# %% validate: decorator_tensor_sums_try_finally [correct]
@torch.no_grad()
def validate(model, loader, criterion, device):
    previous = model.training
    model.eval()
    try:
        total = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = model(x)
            total += criterion(out, y).double() * y.shape[0]
            correct += (out.argmax(-1) == y).sum()
        n = len(loader.dataset)
        return (total / n).item(), correct.item() / n
    finally:
        model.train(previous)

# %% validate: returns_tensors [correct]
def validate(model, loader, criterion, device):
    state = model.training
    model.eval()
    losses, right, count = [], 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            scores = model(x)
            losses.append(criterion(scores, y) * len(y))
            right += (torch.max(scores, 1)[1] == y).sum()
            count += len(y)
    model.train(state)
    return torch.stack(losses).sum() / count, right / count

# %% validate: labels_left_on_the_cpu_as_in_the_notes [wrong on cuda: validate_loss_and_accuracy]
def validate(model, loader, criterion, device):
    was_training = model.training
    model.eval()
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            scores = model(x.to(device))
            total += criterion(scores, y).item() * len(y)
            correct += (scores.argmax(dim=1) == y).sum().item()
            n += len(y)
    model.train(was_training)
    return total / n, correct / n

# %% validate: train_mode [wrong: validate_loss_and_accuracy, validate_eval_mode_without_gradients]
def validate(model, loader, criterion, device):
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            scores = model(x)
            total += criterion(scores, y).item() * len(y)
            correct += (scores.argmax(dim=1) == y).sum().item()
            n += len(y)
    return total / n, correct / n

# %% validate: no_no_grad [wrong: validate_eval_mode_without_gradients]
def validate(model, loader, criterion, device):
    was_training = model.training
    model.eval()
    total, correct, n = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        scores = model(x)
        total += criterion(scores, y).item() * len(y)
        correct += (scores.argmax(dim=1) == y).sum().item()
        n += len(y)
    model.train(was_training)
    return total / n, correct / n

# %% validate: leaves_eval_mode [wrong: validate_restores_the_mode]
def validate(model, loader, criterion, device):
    model.eval()
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            scores = model(x)
            total += criterion(scores, y).item() * len(y)
            correct += (scores.argmax(dim=1) == y).sum().item()
            n += len(y)
    return total / n, correct / n

# %% validate: always_back_to_train [wrong: validate_restores_the_mode]
def validate(model, loader, criterion, device):
    model.eval()
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            scores = model(x)
            total += criterion(scores, y).item() * len(y)
            correct += (scores.argmax(dim=1) == y).sum().item()
            n += len(y)
    model.train()
    return total / n, correct / n

# %% validate: mean_of_batch_losses [wrong: validate_smaller_last_batch]
def validate(model, loader, criterion, device):
    was_training = model.training
    model.eval()
    losses, correct, n = [], 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            scores = model(x)
            losses.append(criterion(scores, y).item())
            correct += (scores.argmax(dim=1) == y).sum().item()
            n += len(y)
    model.train(was_training)
    return sum(losses) / len(losses), correct / n

# %% validate: sum_of_batch_losses [wrong: validate_loss_and_accuracy, validate_smaller_last_batch]
def validate(model, loader, criterion, device):
    was_training = model.training
    model.eval()
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            scores = model(x)
            total += criterion(scores, y).item()
            correct += (scores.argmax(dim=1) == y).sum().item()
            n += len(y)
    model.train(was_training)
    return total, correct / n

# %% validate: correct_count [wrong: validate_loss_and_accuracy, validate_smaller_last_batch]
def validate(model, loader, criterion, device):
    was_training = model.training
    model.eval()
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            scores = model(x)
            total += criterion(scores, y).item() * len(y)
            correct += (scores.argmax(dim=1) == y).sum().item()
            n += len(y)
    model.train(was_training)
    return total / n, correct

# %% validate: inputs_not_moved [wrong: validate_moves_every_input_batch]
def validate(model, loader, criterion, device):
    was_training = model.training
    model.eval()
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            scores = model(x)
            total += criterion(scores, y).item() * len(y)
            correct += (scores.argmax(dim=1) == y).sum().item()
            n += len(y)
    model.train(was_training)
    return total / n, correct / n

# %% fit: deepcopy_of_the_model_zero_grad_after_step [correct]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model.to(device)
    history = {"train_loss": [], "val_loss": [], "val_accuracy": []}
    best_model, best_accuracy, best_epoch = None, float("-inf"), 0
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            total += loss.item() * len(y)
            count += len(y)
        val_loss, val_accuracy = validate(model, val_loader, criterion, device)
        history["train_loss"].append(total / count)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        if val_accuracy > best_accuracy:
            best_model, best_accuracy, best_epoch = copy.deepcopy(model), val_accuracy, epoch
    model.load_state_dict(best_model.state_dict())
    history["best_epoch"] = best_epoch
    return history

# %% fit: cloned_tensors_mean_of_batch_losses [correct]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model = model.to(device)
    train_losses, val_losses, accuracies = [], [], []
    best = None
    for epoch in range(epochs):
        model.train()
        batch_losses = []
        for inputs, labels in train_loader:
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
            batch_losses.append(loss.item())
        train_losses.append(sum(batch_losses) / len(batch_losses))
        loss, accuracy = validate(model, val_loader, criterion, device)
        val_losses.append(loss)
        accuracies.append(accuracy)
        if best is None or accuracy > accuracies[best]:
            best = epoch
            best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_weights)
    return {"train_loss": train_losses, "val_loss": val_losses, "val_accuracy": accuracies,
            "best_epoch": best}

# %% fit: every_epoch_on_the_cpu_argmax_at_the_end [correct]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model.to(device)
    history = {"train_loss": [], "val_loss": [], "val_accuracy": []}
    states = []
    for _ in range(epochs):
        model.train()
        running = torch.zeros((), device=device)
        seen = 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            model.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            running += loss.detach() * x.shape[0]
            seen += x.shape[0]
        history["train_loss"].append((running / seen).item())
        model.eval()
        total, correct, n = 0.0, 0, 0
        with torch.inference_mode():
            for x, y in val_loader:
                x, y = x.to(device), y.to(device)
                scores = model(x)
                total += criterion(scores, y).item() * len(y)
                correct += (scores.argmax(1) == y).sum().item()
                n += len(y)
        history["val_loss"].append(total / n)
        history["val_accuracy"].append(correct / n)
        states.append({k: v.to("cpu", copy=True) for k, v in model.state_dict().items()})
    best = int(torch.tensor(history["val_accuracy"]).argmax())
    model.load_state_dict(states[best])
    history["best_epoch"] = best
    return history

# %% fit: state_dict_without_copy [wrong: fit_keeps_the_best_weights]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model.to(device)
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "best_epoch": 0}
    best_accuracy, best_state = -1.0, None
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        val_loss, val_accuracy = validate(model, val_loader, criterion, device)
        history["train_loss"].append(total / count)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        if val_accuracy > best_accuracy:
            best_accuracy, history["best_epoch"] = val_accuracy, epoch
            best_state = model.state_dict()
    model.load_state_dict(best_state)
    return history

# %% fit: best_weights_never_loaded [wrong: fit_keeps_the_best_weights]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model.to(device)
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "best_epoch": 0}
    best_accuracy = -1.0
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        val_loss, val_accuracy = validate(model, val_loader, criterion, device)
        history["train_loss"].append(total / count)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        if val_accuracy > best_accuracy:
            best_accuracy, history["best_epoch"] = val_accuracy, epoch
    return history

# %% fit: rebinds_model_to_the_copy [wrong: fit_keeps_the_best_weights]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model.to(device)
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "best_epoch": 0}
    best_accuracy, best_model = -1.0, None
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        val_loss, val_accuracy = validate(model, val_loader, criterion, device)
        history["train_loss"].append(total / count)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        if val_accuracy > best_accuracy:
            best_accuracy, history["best_epoch"] = val_accuracy, epoch
            best_model = copy.deepcopy(model)
    model = best_model
    return history

# %% fit: lowest_accuracy [wrong: fit_best_epoch, fit_keeps_the_best_weights]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model.to(device)
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "best_epoch": 0}
    best_accuracy, best_state = 2.0, None
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        val_loss, val_accuracy = validate(model, val_loader, criterion, device)
        history["train_loss"].append(total / count)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        if val_accuracy < best_accuracy:
            best_accuracy, history["best_epoch"] = val_accuracy, epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return history

# %% fit: lowest_validation_loss [wrong: fit_best_epoch, fit_keeps_the_best_weights]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model.to(device)
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "best_epoch": 0}
    best_loss, best_state = float("inf"), None
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        val_loss, val_accuracy = validate(model, val_loader, criterion, device)
        history["train_loss"].append(total / count)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        if val_loss < best_loss:
            best_loss, history["best_epoch"] = val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return history

# %% fit: ties_go_to_the_latest [wrong: fit_ties_go_to_the_earliest]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model.to(device)
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "best_epoch": 0}
    best_accuracy, best_state = -1.0, None
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        val_loss, val_accuracy = validate(model, val_loader, criterion, device)
        history["train_loss"].append(total / count)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        if val_accuracy >= best_accuracy:
            best_accuracy, history["best_epoch"] = val_accuracy, epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return history

# %% fit: best_epoch_counted_from_one [wrong: fit_best_epoch]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model.to(device)
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "best_epoch": 1}
    best_accuracy, best_state = -1.0, None
    for epoch in range(1, epochs + 1):
        model.train()
        total, count = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        val_loss, val_accuracy = validate(model, val_loader, criterion, device)
        history["train_loss"].append(total / count)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        if val_accuracy > best_accuracy:
            best_accuracy, history["best_epoch"] = val_accuracy, epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return history

# %% fit: validates_before_training [wrong: fit_history, fit_best_epoch, fit_ties_go_to_the_earliest]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model.to(device)
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "best_epoch": 0}
    best_accuracy, best_state = -1.0, None
    for epoch in range(epochs):
        val_loss, val_accuracy = validate(model, val_loader, criterion, device)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        if val_accuracy > best_accuracy:
            best_accuracy, history["best_epoch"] = val_accuracy, epoch
            best_state = copy.deepcopy(model.state_dict())
        model.train()
        total, count = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        history["train_loss"].append(total / count)
    model.load_state_dict(best_state)
    return history

# %% fit: validation_inline_in_train_mode [wrong: fit_modes_and_gradients]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model.to(device)
    model.train()
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "best_epoch": 0}
    best_accuracy, best_state = -1.0, None
    for epoch in range(epochs):
        total, count = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        val_total, correct, n = 0.0, 0, 0
        with torch.no_grad():
            for x, y in val_loader:
                x, y = x.to(device), y.to(device)
                scores = model(x)
                val_total += criterion(scores, y).item() * len(y)
                correct += (scores.argmax(1) == y).sum().item()
                n += len(y)
        history["train_loss"].append(total / count)
        history["val_loss"].append(val_total / n)
        history["val_accuracy"].append(correct / n)
        if correct / n > best_accuracy:
            best_accuracy, history["best_epoch"] = correct / n, epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return history

# %% fit: train_mode_set_once_before_the_loop [wrong: fit_modes_and_gradients]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model.to(device)
    model.train()
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "best_epoch": 0}
    best_accuracy, best_state = -1.0, None
    for epoch in range(epochs):
        total, count = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        model.eval()
        val_total, correct, n = 0.0, 0, 0
        with torch.no_grad():
            for x, y in val_loader:
                x, y = x.to(device), y.to(device)
                scores = model(x)
                val_total += criterion(scores, y).item() * len(y)
                correct += (scores.argmax(1) == y).sum().item()
                n += len(y)
        history["train_loss"].append(total / count)
        history["val_loss"].append(val_total / n)
        history["val_accuracy"].append(correct / n)
        if correct / n > best_accuracy:
            best_accuracy, history["best_epoch"] = correct / n, epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return history

# %% fit: validation_with_gradients [wrong: fit_modes_and_gradients]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model.to(device)
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "best_epoch": 0}
    best_accuracy, best_state = -1.0, None
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        model.eval()
        val_total, correct, n = 0.0, 0, 0
        for x, y in val_loader:
            x, y = x.to(device), y.to(device)
            scores = model(x)
            val_total += criterion(scores, y).item() * len(y)
            correct += (scores.argmax(1) == y).sum().item()
            n += len(y)
        history["train_loss"].append(total / count)
        history["val_loss"].append(val_total / n)
        history["val_accuracy"].append(correct / n)
        if correct / n > best_accuracy:
            best_accuracy, history["best_epoch"] = correct / n, epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return history

# %% fit: no_zero_grad [wrong: fit_history, fit_keeps_the_best_weights]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model.to(device)
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "best_epoch": 0}
    best_accuracy, best_state = -1.0, None
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        val_loss, val_accuracy = validate(model, val_loader, criterion, device)
        history["train_loss"].append(total / count)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        if val_accuracy > best_accuracy:
            best_accuracy, history["best_epoch"] = val_accuracy, epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return history

# %% fit: training_batches_not_moved [wrong: fit_moves_every_input_batch]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    model.to(device)
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "best_epoch": 0}
    best_accuracy, best_state = -1.0, None
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        val_loss, val_accuracy = validate(model, val_loader, criterion, device)
        history["train_loss"].append(total / count)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        if val_accuracy > best_accuracy:
            best_accuracy, history["best_epoch"] = val_accuracy, epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return history

# %% fit: model_not_moved [wrong on cuda: fit_runs_on_the_device, fit_history]
def fit(model, train_loader, val_loader, criterion, optimizer, epochs, device):
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "best_epoch": 0}
    best_accuracy, best_state = -1.0, None
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        val_loss, val_accuracy = validate(model, val_loader, criterion, device)
        history["train_loss"].append(total / count)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        if val_accuracy > best_accuracy:
            best_accuracy, history["best_epoch"] = val_accuracy, epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return history
