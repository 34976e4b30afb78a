# Alternative implementations of a4_deep's exercise, graded by the project's tests and used to
# build the demo class. Instructor material: never copied to assignments/.

# %% net: reversed_insert_front_f_relu [correct]
class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.hidden = nn.ModuleList()
        for i in reversed(range(len(layers) - 1)):
            self.hidden.insert(0, nn.Linear(layers[i], layers[i + 1]))

    def forward(self, x):
        for i, layer in enumerate(self.hidden):
            x = layer(x)
            if i < len(self.hidden) - 1:
                x = F.relu(x)
        return x

# %% net: seeds_style_zip_range [correct]
class Net(nn.Module):
    def __init__(self, Layers):
        super(Net, self).__init__()
        self.hidden = nn.ModuleList()
        for input_size, output_size in zip(Layers, Layers[1:]):
            self.hidden.append(nn.Linear(input_size, output_size))

    def forward(self, activation):
        L = len(self.hidden)
        for l, linear_transform in zip(range(L), self.hidden):
            if l < L - 1:
                activation = torch.relu(linear_transform(activation))
            else:
                activation = linear_transform(activation)
        return activation

# %% net: relu_module_and_extra_parameter_free_modules [correct]
class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.0)
        self.hidden = nn.ModuleList([nn.Linear(a, b) for a, b in zip(layers[:-1], layers[1:])])
        self.depth = len(layers) - 1

    def forward(self, x):
        *body, last = self.hidden
        for layer in body:
            x = self.drop(self.act(layer(x)))
        return last(x)

# %% net: clamp_and_matmul_by_hand [correct]
class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        sizes = list(layers)
        self.hidden = nn.ModuleList()
        for i in range(len(sizes) - 1):
            self.hidden.append(nn.Linear(sizes[i], sizes[i + 1]))

    def forward(self, x):
        h = x
        for i in range(len(self.hidden)):
            layer = self.hidden[i]
            h = h @ layer.weight.T + layer.bias
            if i != len(self.hidden) - 1:
                h = h.clamp(min=0)
        return h

# %% net: float64_inside_cast_back [correct]
class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.hidden = nn.ModuleList(nn.Linear(*pair) for pair in zip(layers, layers[1:]))

    def forward(self, x):
        h = x.double()
        for layer in self.hidden[:-1]:
            h = F.linear(h, layer.weight.double(), layer.bias.double()).relu()
        last = self.hidden[-1]
        return F.linear(h, last.weight.double(), last.bias.double()).to(x.dtype)

# %% net: python_list [wrong: net_hidden_is_modulelist, net_layer_sizes, net_parameters_registered, net_parameters_any_depth, net_forward_float64, net_output_kind]
class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.hidden = [nn.Linear(a, b) for a, b in zip(layers, layers[1:])]

    def forward(self, x):
        for layer in self.hidden[:-1]:
            x = torch.relu(layer(x))
        return self.hidden[-1](x)

# %% net: relu_after_last_layer [wrong: net_forward_one_hidden_layer, net_forward_any_depth, net_keeps_negative_logits]
class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers, layers[1:]))

    def forward(self, x):
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return x

# %% net: off_by_one_layer_count [wrong: net_layer_sizes, net_parameters_registered, net_forward_one_hidden_layer, net_structure_any_depth, net_forward_any_depth]
class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.hidden = nn.ModuleList()
        for i in range(len(layers) - 2):
            self.hidden.append(nn.Linear(layers[i], layers[i + 1]))

    def forward(self, x):
        for layer in self.hidden[:-1]:
            x = torch.relu(layer(x))
        return self.hidden[-1](x)

# %% net: sigmoid_instead_of_relu [wrong: net_forward_one_hidden_layer, net_forward_any_depth, net_forward_float64]
class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers, layers[1:]))

    def forward(self, x):
        for layer in self.hidden[:-1]:
            x = torch.sigmoid(layer(x))
        return self.hidden[-1](x)

# %% net: no_activation [wrong: net_forward_one_hidden_layer, net_forward_any_depth, net_forward_float64]
class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers, layers[1:]))

    def forward(self, x):
        for layer in self.hidden:
            x = layer(x)
        return x

# %% net: reversed_sizes [wrong: net_layer_sizes, net_forward_one_hidden_layer, net_structure_any_depth, net_forward_any_depth]
class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.hidden = nn.ModuleList(nn.Linear(b, a) for a, b in zip(layers, layers[1:]))

    def forward(self, x):
        for layer in self.hidden[:-1]:
            x = torch.relu(layer(x))
        return self.hidden[-1](x)

# %% net: activations_inside_hidden [wrong: net_layer_sizes, net_forward_one_hidden_layer, net_structure_any_depth]
class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.hidden = nn.ModuleList()
        for a, b in zip(layers, layers[1:]):
            self.hidden.append(nn.Linear(a, b))
            self.hidden.append(nn.ReLU())
        del self.hidden[-1]

    def forward(self, x):
        for layer in self.hidden:
            x = layer(x)
        return x

# %% net: forward_skips_last_layer [wrong: net_forward_one_hidden_layer, net_forward_any_depth, net_output_kind]
class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers, layers[1:]))

    def forward(self, x):
        for layer in self.hidden[:-1]:
            x = torch.relu(layer(x))
        return x

# %% net: fixed_two_hidden_layers [wrong: net_structure_any_depth, net_parameters_any_depth, net_forward_any_depth]
class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.hidden = nn.ModuleList([nn.Linear(layers[0], layers[1]),
                                     nn.Linear(layers[1], layers[-1])])

    def forward(self, x):
        x = torch.relu(self.hidden[0](x))
        return self.hidden[1](x)

# %% net: sequential_not_modulelist [wrong: net_hidden_is_modulelist]
class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.hidden = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(layers, layers[1:])])

    def forward(self, x):
        for layer in self.hidden[:-1]:
            x = torch.relu(layer(x))
        return self.hidden[-1](x)

# %% net: not_a_module [wrong: net_is_module, net_parameters_registered]
class Net:
    def __init__(self, layers):
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers, layers[1:]))

    def to(self, *args, **kwargs):
        self.hidden.to(*args, **kwargs)
        return self

    def __call__(self, x):
        for layer in self.hidden[:-1]:
            x = torch.relu(layer(x))
        return self.hidden[-1](x)
