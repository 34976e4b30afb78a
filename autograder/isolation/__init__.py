"""Run student code where it can harm nothing, and talk to it only in plain data.

The modules, from the grader's side inwards:

- :mod:`.config`: the limits (:class:`~.config.SandboxConfig`) and how they read in a report;
- :mod:`.sandbox`: one submission's sandbox: sends probe requests, enforces time, memory and
  scratch limits, counts failures;
- :mod:`.launch`: starts workers, warm from the fork server or cold, with the fallback;
- :mod:`.zygote`: the fork server; :mod:`.cgroup`: a cgroup per worker;
- :mod:`.child`: the set-up every worker does to itself first, cold or warm;
- :mod:`.worker`: the untrusted side, which confines itself (:mod:`.confine`: Landlock,
  namespaces, capabilities), runs the cells and answers probes;
- :mod:`.frames`: the length-prefixed frames both sides exchange.

Nothing is imported here: a cold worker starts as ``python -I -m autograder.isolation.worker``
and must not import torch before it has set its limits.
"""
