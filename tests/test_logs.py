"""The two log files and the time-log reader."""

from __future__ import annotations

from chimera_nb.logs import (
    MASTER,
    STATUS_LOG,
    TIME_LOG,
    attach_log_files,
    log_master_request,
    log_worker_call,
    read_time_log,
    status_logger,
)

#: The columns read_time_log gives, whatever else a line carries.
COLUMNS = ["time", "worker", "endpoint", "latency_ms", "status", "round", "attempt"]


def test_time_log_lines_read_back_into_a_dataframe(tmp_path):
    # Prepare
    detach = attach_log_files(tmp_path)
    log_worker_call("worker1", "/v1/chimera/sgd/fit-step", 1.25, 200, round_number=3)
    log_worker_call("worker2", "/v1/chimera/sgd/statistics", 2000.0, "timeout", attempt=2)
    detach()
    # Execute
    frame = read_time_log(tmp_path)
    # Assert
    assert list(frame.columns) == COLUMNS
    assert frame["worker"].tolist() == ["worker1", "worker2"]
    assert frame["latency_ms"].tolist() == [1.25, 2000.0]
    assert frame["status"].tolist() == ["200", "timeout"]
    assert frame["round"].iloc[0] == 3 and frame["round"].isna().iloc[1]
    assert frame["attempt"].tolist() == [1, 2]
    assert str(frame["time"].dtype).startswith("datetime64")


def test_attaching_the_same_directory_twice_writes_each_line_once(tmp_path):
    # Prepare
    first, second = attach_log_files(tmp_path), attach_log_files(tmp_path)
    # Execute
    status_logger.info("hello")
    second()
    status_logger.info("still attached")
    first()
    status_logger.info("detached")
    # Assert
    lines = (tmp_path / STATUS_LOG).read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == ["hello", "still attached"]
    assert (tmp_path / TIME_LOG).exists()


def test_a_master_request_line_reads_back_with_the_same_columns_and_ends_with_its_url(tmp_path):
    # Prepare
    detach = attach_log_files(tmp_path)
    log_worker_call("worker1", "/v1/chimera/sgd/fit-step", 1.5, 200, 1, url="http://127.0.0.1:5001")
    log_master_request("/v1/chimera-parameter-server/fit", 812.5, 200, url="http://127.0.0.1:8080")
    detach()

    # Execute
    frame = read_time_log(tmp_path)
    lines = (tmp_path / TIME_LOG).read_text().splitlines()

    # Assert
    assert list(frame.columns) == COLUMNS
    assert frame["worker"].tolist() == ["worker1", MASTER]
    assert frame["endpoint"].iloc[1] == "/v1/chimera-parameter-server/fit"
    assert frame["latency_ms"].iloc[1] == 812.5
    assert frame["round"].isna().iloc[1]
    assert lines[0].endswith(" url=http://127.0.0.1:5001")
    assert lines[1].endswith(" url=http://127.0.0.1:8080")
