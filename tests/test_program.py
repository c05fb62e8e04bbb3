"""The one error, exit-code and warning policy of the three programs
(``miniclip/system/program.py``), and that ``train``, ``evaluation`` and ``grade`` follow it."""
import warnings

import pytest

from miniclip.evaluation.cli import main as evaluation_main
from miniclip.grading.cli import main as grade_main
from miniclip.system.program import UsageError, run_program
from miniclip.training.cli import main as train_main


def raising(error):
    def body():
        raise error
    return body


def test_a_problem_the_user_can_fix_is_one_error_line_and_exit_code_2(capsys):
    assert run_program("prog", raising(UsageError("--data x: no such folder"))) == 2
    assert capsys.readouterr().err == "prog: error: --data x: no such folder\n"


@pytest.mark.parametrize("error", [FileNotFoundError("no file a.npz"), ValueError("bad value")])
def test_missing_files_and_bad_values_are_the_users_to_fix(capsys, error):
    assert run_program("prog", raising(error)) == 2
    assert capsys.readouterr().err == f"prog: error: {error}\n"


def test_another_failure_is_exit_code_1_naming_its_type_and_debug(capsys):
    assert run_program("prog", raising(RuntimeError("boom"))) == 1
    assert capsys.readouterr().err == ("prog: error: RuntimeError: boom (run again with --debug "
                                       "for the traceback)\n")


def test_debug_lets_the_error_raise_with_its_traceback():
    with pytest.raises(RuntimeError, match="boom"):
        run_program("prog", raising(RuntimeError("boom")), debug=True)


def test_ctrl_c_is_exit_code_130(capsys):
    assert run_program("prog", raising(KeyboardInterrupt())) == 130
    assert capsys.readouterr().err == "prog: interrupted\n"


def test_a_warning_is_one_line_naming_the_program(capsys):
    def body():
        warnings.warn("skipped 1 of 3 rows", stacklevel=2)
        return 0

    assert run_program("prog", body) == 0
    assert capsys.readouterr().err == "prog: warning: skipped 1 of 3 rows\n"


def test_the_three_programs_end_a_missing_input_alike(tmp_path, capsys):
    missing = str(tmp_path / "nowhere")
    codes = [train_main(["--tiny", "--data", missing, "--out", str(tmp_path / "run")]),
             evaluation_main(["classify", missing, "--model", "tiny-vit"]),
             grade_main([missing, "submission.py"])]
    assert codes == [2, 2, 2]
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": error: ")[0] for line in lines] == [
        "python -m miniclip.train", "python -m miniclip.evaluation", "python -m miniclip.grade"]
