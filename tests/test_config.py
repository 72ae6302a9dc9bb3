"""Unit tests for `sim.config`: building, round trips, validation messages and YAML loading.

Messages are matched on their stable parts (the path, the rule and the value), not whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from client import Backoff, ClientPolicy, Jitter
from sim.config import (
    AtOnce,
    Config,
    ConfigError,
    FaultRule,
    Poisson,
    RunConfig,
    ServerConfig,
    UniformWindow,
    WorkloadConfig,
    config_from_dict,
    config_to_dict,
    load_config,
)
from sim.distributions import Constant, Exponential, LogNormal, Uniform

DISTRIBUTION_KINDS = ("constant", "exponential", "uniform", "lognormal")


def config_problems(data: Any) -> list[str]:
    """Return the problems `config_from_dict` reports for `data`, failing if it accepts it."""
    with pytest.raises(ConfigError) as excinfo:
        config_from_dict(data)
    return excinfo.value.problems


def single_problem(data: Any) -> str:
    problems = config_problems(data)
    assert len(problems) == 1, problems
    return problems[0]


def custom_config() -> Config:
    """Return a config that differs from the defaults in every section."""
    return Config(
        name="custom",
        client=ClientPolicy(
            poll=Backoff(initial=0.25, multiplier=1.6, maximum=12.0, jitter="proportional", jitter_fraction=0.3),
            retry=Backoff(initial=0.1, multiplier=3.0, maximum=5.0, jitter="decorrelated"),
            max_attempts=4,
            total_timeout=90.0,
            request_timeout=2.5,
        ),
        server=ServerConfig(
            workers=8,
            service_time=Exponential(mean=0.02),
            queue_limit=0,
            latency=Uniform(low=0.001, high=0.004),
            job_duration=LogNormal(median=20.0, sigma=0.25),
            job_error_probability=0.05,
            faults=(
                FaultRule(endpoint="create", status=429, first=10),
                FaultRule(endpoint="status", status=500, probability=0.1),
            ),
            host="0.0.0.0",
            port=0,
        ),
        workload=WorkloadConfig(clients=250, arrival=Poisson(rate=12.5)),
        run=RunConfig(seed=7, duration=300.0, bin_width=0.5),
    )


# ----------------------------------------------------------------------------- building


def test_defaults_build() -> None:
    config = Config()

    assert config.server.workers == 50
    assert config.client == ClientPolicy()
    assert config.workload.arrival == AtOnce()
    assert config.run.duration is None


def test_empty_dict_gives_defaults() -> None:
    assert config_from_dict({}) == Config()


def test_default_round_trip() -> None:
    assert config_from_dict(config_to_dict(Config())) == Config()


def test_custom_round_trip() -> None:
    config = custom_config()

    assert config_from_dict(config_to_dict(config)) == config


def test_round_trip_through_yaml() -> None:
    config = custom_config()
    text = yaml.safe_dump(config_to_dict(config))

    assert config_from_dict(yaml.safe_load(text)) == config


def test_to_dict_uses_plain_values() -> None:
    data = config_to_dict(custom_config())

    assert data["client"]["poll"]["jitter"] == "proportional"
    assert data["server"]["service_time"] == {"kind": "exponential", "mean": 0.02}
    fault = data["server"]["faults"][0]
    assert {key: fault[key] for key in ("endpoint", "status", "first", "probability", "action")} == {
        "endpoint": "create", "status": 429, "first": 10, "probability": None, "action": "respond",
    }
    assert data["workload"]["arrival"] == {"kind": "poisson", "rate": 12.5}


def test_sections_build_typed_objects() -> None:
    config = config_from_dict(
        {
            "client": {"retry": {"initial": 0.5, "jitter": "full"}, "max_attempts": 3},
            "workload": {"arrival": {"kind": "uniform", "window": 30}},
        }
    )

    assert config.client.retry == Backoff(initial=0.5, jitter=Jitter.FULL)
    assert config.client.max_attempts == 3
    assert config.workload.arrival == UniformWindow(window=30.0)


def test_arrival_kind_as_string() -> None:
    assert config_from_dict({"workload": {"arrival": "poisson"}}).workload.arrival == Poisson()


# ----------------------------------------------------------------------------- unknown keys


def test_unknown_server_key_suggests() -> None:
    problem = single_problem({"server": {"wrokers": 10}})

    assert problem.startswith("server.wrokers:")
    assert "did you mean 'workers'" in problem


def test_unknown_top_level_key_suggests() -> None:
    problem = single_problem({"sever": {"workers": 10}})

    assert problem.startswith("sever:")
    assert "top level" in problem
    assert "did you mean 'server'" in problem


def test_unknown_nested_key_suggests() -> None:
    problem = single_problem({"client": {"retry": {"initail": 0.5}}})

    assert problem.startswith("client.retry.initail:")
    assert "did you mean 'initial'" in problem


def test_unknown_key_lists_valid_keys() -> None:
    problem = single_problem({"run": {"zzzz": 1}})

    assert problem.startswith("run.zzzz:")
    assert "did you mean" not in problem
    for key in ("seed", "duration", "bin_width"):
        assert key in problem


# ----------------------------------------------------------------------------- values


def test_negative_workers_rejected() -> None:
    problem = single_problem({"server": {"workers": -5}})

    assert problem.startswith("server.workers:")
    assert ">= 1" in problem
    assert "-5" in problem


def test_zero_max_attempts_rejected() -> None:
    problem = single_problem({"client": {"max_attempts": 0}})

    assert problem.startswith("client.max_attempts:")
    assert ">= 1" in problem
    assert "got 0" in problem


def test_string_for_integer_rejected() -> None:
    problem = single_problem({"server": {"workers": "fifty"}})

    assert problem.startswith("server.workers:")
    assert "'fifty'" in problem


def test_string_for_float_rejected() -> None:
    problem = single_problem({"client": {"total_timeout": "10s"}})

    assert problem.startswith("client.total_timeout:")
    assert "'10s'" in problem


def test_boolean_for_integer_rejected() -> None:
    problem = single_problem({"workload": {"clients": True}})

    assert problem.startswith("workload.clients:")
    assert "true" in problem


def test_infinite_timeout_rejected() -> None:
    problem = single_problem({"client": {"total_timeout": float("inf")}})

    assert problem.startswith("client.total_timeout:")
    assert "finite" in problem


def test_huge_integer_timeout_rejected() -> None:
    # YAML reads a long run of digits as an int. One too large for a float must give a
    # ConfigError that names the path, not an OverflowError from float().
    problem = single_problem({"client": {"total_timeout": 10**400}})

    assert problem.startswith("client.total_timeout:")


def test_maximum_below_initial_rejected() -> None:
    problem = single_problem({"client": {"poll": {"initial": 5.0, "maximum": 2.0}}})

    assert problem.startswith("client.poll.maximum:")
    assert "at least initial" in problem
    assert "2.0" in problem


def test_unknown_jitter_rejected() -> None:
    problem = single_problem({"client": {"retry": {"jitter": "gaussian"}}})

    assert problem.startswith("client.retry.jitter:")
    assert "'gaussian'" in problem
    assert "decorrelated" in problem


def test_all_problems_reported_together() -> None:
    data = {
        "sever": {},
        "server": {"workers": -5, "latency": "fast"},
        "client": {"retry": {"initail": 1.0}},
        "workload": {"clients": 0},
    }

    with pytest.raises(ConfigError) as excinfo:
        config_from_dict(data)

    problems = excinfo.value.problems
    assert len(problems) == 5, problems
    for path in ("sever:", "server.workers:", "server.latency", "client.retry.initail:", "workload.clients:"):
        assert any(problem.startswith(path) for problem in problems), path
    assert "5 problems" in str(excinfo.value)


# ----------------------------------------------------------------------------- distributions


@pytest.mark.parametrize("value", [0.002, 0, 3])
def test_bare_number_is_constant(value: float) -> None:
    config = config_from_dict({"server": {"latency": value}})

    assert config.server.latency == Constant(float(value))


def test_distribution_kinds_build() -> None:
    server = config_from_dict(
        {
            "server": {
                "service_time": {"kind": "exponential", "mean": 0.01},
                "latency": {"kind": "uniform", "low": 0.001, "high": 0.003},
                "job_duration": {"kind": "lognormal", "median": 20, "sigma": 0.5},
            }
        }
    ).server

    assert server.service_time == Exponential(mean=0.01)
    assert server.latency == Uniform(low=0.001, high=0.003)
    assert server.job_duration == LogNormal(median=20.0, sigma=0.5)


def test_unknown_distribution_lists_kinds() -> None:
    problem = single_problem({"server": {"service_time": {"kind": "gamma", "mean": 1}}})

    assert problem.startswith("server.service_time.kind:")
    assert "'gamma'" in problem
    for kind in DISTRIBUTION_KINDS:
        assert kind in problem


def test_missing_distribution_kind_rejected() -> None:
    problem = single_problem({"server": {"service_time": {"mean": 0.01}}})

    assert problem.startswith("server.service_time.kind:")
    assert "null" in problem


def test_negative_bare_number_rejected() -> None:
    problem = single_problem({"server": {"latency": -0.5}})

    assert problem.startswith("server.latency")
    assert ">= 0" in problem
    assert "-0.5" in problem


@pytest.mark.parametrize(
    "distribution, path, rule",
    [
        ({"kind": "lognormal", "median": 0}, "server.job_duration.median:", "> 0"),
        ({"kind": "lognormal", "median": 10, "sigma": -1}, "server.job_duration.sigma:", ">= 0"),
        ({"kind": "exponential", "mean": -2}, "server.job_duration.mean:", "> 0"),
        ({"kind": "uniform", "low": -1, "high": 2}, "server.job_duration.low:", ">= 0"),
        ({"kind": "uniform", "low": 5, "high": 2}, "server.job_duration.high:", "at least low"),
    ],
)
def test_distribution_parameters_checked(distribution: dict[str, Any], path: str, rule: str) -> None:
    problem = single_problem({"server": {"job_duration": distribution}})

    assert problem.startswith(path)
    assert rule in problem


def test_missing_median_rejected() -> None:
    problem = single_problem({"server": {"job_duration": {"kind": "lognormal"}}})

    assert problem.startswith("server.job_duration")
    assert "median" in problem


def test_unknown_distribution_key_rejected() -> None:
    problem = single_problem({"server": {"service_time": {"kind": "exponential", "mean": 1, "scale": 2}}})

    assert problem.startswith("server.service_time.scale:")


# ----------------------------------------------------------------------------- faults


def test_fault_rules_build() -> None:
    faults = config_from_dict(
        {"server": {"faults": [{"first": 3}, {"endpoint": "status", "status": 500, "probability": 0.25}]}}
    ).server.faults

    assert faults == (
        FaultRule(first=3),
        FaultRule(endpoint="status", status=500, probability=0.25),
    )


@pytest.mark.parametrize("rule", [{"status": 503}, {"first": 3, "probability": 0.5}])
def test_fault_needs_one_trigger(rule: dict[str, Any]) -> None:
    problem = single_problem({"server": {"faults": [rule]}})

    assert problem.startswith("server.faults[0]:")
    assert "exactly one of first" in problem


def test_fault_problem_names_index() -> None:
    problem = single_problem({"server": {"faults": [{"first": 1}, {"status": 503}]}})

    assert problem.startswith("server.faults[1]:")


def test_fault_rule_rejects_both_in_python() -> None:
    with pytest.raises(ValueError, match="exactly one of first"):
        FaultRule(first=1, probability=0.5)


def test_fault_status_range_checked() -> None:
    problem = single_problem({"server": {"faults": [{"status": 200, "first": 1}]}})

    assert problem.startswith("server.faults[0].status:")
    assert ">= 400" in problem


# ----------------------------------------------------------------------------- load_config


def test_load_config_names_from_stem(tmp_path: Path) -> None:
    path = tmp_path / "thundering-herd.yaml"
    path.write_text("server:\n  workers: 8\nworkload:\n  clients: 500\n", encoding="utf-8")

    config = load_config(path)

    assert config.name == "thundering-herd"
    assert config.server.workers == 8
    assert config.workload.clients == 500


def test_load_config_keeps_given_name(tmp_path: Path) -> None:
    path = tmp_path / "file-stem.yaml"
    path.write_text("name: chosen\n", encoding="utf-8")

    assert load_config(path).name == "chosen"


def test_load_empty_file_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")

    config = load_config(path)

    assert config.name == "empty"
    assert config.server == ServerConfig()


def test_load_missing_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    assert str(path) in str(excinfo.value)
    assert "file not found" in str(excinfo.value)


def test_load_invalid_yaml_rejected(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("server:\n  workers: [1, 2\n", encoding="utf-8")

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    assert str(path) in str(excinfo.value)
    assert "not valid YAML" in str(excinfo.value)
    assert f'in "{path}", line' in str(excinfo.value)
    assert "<unicode string>" not in str(excinfo.value)


def test_load_list_top_level_rejected(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- server\n- client\n", encoding="utf-8")

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    assert "top level must be a mapping" in str(excinfo.value)


def test_load_reports_file_problems(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("server:\n  wrokers: 10\n  workers: -5\n", encoding="utf-8")

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    message = str(excinfo.value)
    assert str(path) in message
    assert "server.wrokers" in message
    assert "server.workers" in message


def test_warmup_must_be_shorter_than_duration() -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"run": {"duration": 10.0, "warmup": 1000.0}})

    message = str(caught.value)
    assert "run.warmup" in message
    assert "< duration (10.0)" in message
    assert "1000.0" in message


def test_bin_width_below_a_millisecond_rejected() -> None:
    problem = single_problem({"run": {"bin_width": 1e-6}})

    assert problem.startswith("run.bin_width:")
    assert "1e-06" in problem


def test_bin_width_too_fine_for_duration_rejected() -> None:
    problem = single_problem({"run": {"bin_width": 0.001, "duration": 1e6}})

    assert problem.startswith("run.bin_width:")
    assert "at most 10,000,000 bins" in problem


def test_client_count_has_a_ceiling() -> None:
    problem = single_problem({"workload": {"clients": 1_000_000_000}})

    assert problem.startswith("workload.clients:")
    assert "1000000000" in problem
