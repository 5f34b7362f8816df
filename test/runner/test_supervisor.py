"""
Unit tests of the supervisor daemon's own functions (src/runner/supervisor.py), with the standard
library's unittest: `python3 -m unittest discover -s test/runner -p 'test_*.py'`. The daemon as a
whole is tested from TypeScript (test/runner/*.test.ts), through real launches.
"""
import importlib.util
import json
import os
import pwd
import stat
import tempfile
import unittest

SOURCE = os.path.join(os.path.dirname(__file__), "..", "..", "src", "runner", "supervisor.py")
spec = importlib.util.spec_from_file_location("supervisor", SOURCE)
supervisor = importlib.util.module_from_spec(spec)
spec.loader.exec_module(supervisor)


class TempDir(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)


class ParseSpec(unittest.TestCase):
    @staticmethod
    def encode(pairs):
        return b"".join(key.encode() + b"\0" + value.encode() + b"\0" for key, value in pairs)

    def test_repeated_args_and_env_in_order(self):
        spec = supervisor.parse_spec(self.encode([
            ("arg", "/bin/sh"), ("arg", "-c"), ("arg", "echo 'a b'"), ("env", "A=1"), ("env", "B=x=y"),
            ("stdout", "/o"), ("stderr", "/e"), ("uid", "1000"), ("groups", "1000,27"),
        ]))
        self.assertEqual(spec["arg"], ["/bin/sh", "-c", "echo 'a b'"])
        self.assertEqual(supervisor.environment(spec), {"A": "1", "B": "x=y"})
        self.assertEqual((spec["uid"], spec["groups"]), ("1000", "1000,27"))

    def test_values_may_hold_newlines(self):
        spec = supervisor.parse_spec(bytearray(self.encode([
            ("arg", "/bin/sh"), ("arg", "-c"), ("arg", "echo a\necho b"), ("stdout", "/o"), ("stderr", "/e"),
        ])))
        self.assertEqual(spec["arg"][2], "echo a\necho b")

    def test_a_spec_without_command_or_files_is_refused(self):
        with self.assertRaisesRegex(supervisor.Failure, "spec has no command"):
            supervisor.parse_spec(self.encode([("stdout", "/o"), ("stderr", "/e")]))
        with self.assertRaisesRegex(supervisor.Failure, "spec has no command"):
            supervisor.parse_spec(self.encode([("arg", "true")]))
        with self.assertRaisesRegex(supervisor.Failure, "spec has no command"):
            supervisor.parse_spec(b"")


class OpenOutput(TempDir):
    def test_creates_a_file_and_says_so_then_appends(self):
        fd, file_id = supervisor.open_output(self.path("out"), "stdout file")
        os.write(fd, b"one\n")
        os.close(fd)
        st = os.stat(self.path("out"))
        self.assertEqual(file_id, f"{st.st_dev}:{st.st_ino}:{st.st_uid}:1")
        fd, again = supervisor.open_output(self.path("out"), "stdout file")
        os.write(fd, b"two\n")
        os.close(fd)
        self.assertEqual(again, f"{st.st_dev}:{st.st_ino}:{st.st_uid}:0")
        with open(self.path("out")) as f:
            self.assertEqual(f.read(), "one\ntwo\n")

    def test_the_descriptor_blocks_again_for_the_job(self):
        fd, _ = supervisor.open_output(self.path("out"), "stdout file")
        self.assertTrue(os.get_blocking(fd))
        os.close(fd)

    def test_a_fifo_without_reader_fails_at_once(self):
        os.mkfifo(self.path("fifo"))
        with self.assertRaisesRegex(supervisor.Failure, 'stdout file ".*fifo": a FIFO with no reader'):
            supervisor.open_output(self.path("fifo"), "stdout file")

    def test_a_fifo_with_a_reader_opens_but_is_not_streamable(self):
        os.mkfifo(self.path("fifo"))
        reader = os.open(self.path("fifo"), os.O_RDONLY | os.O_NONBLOCK)
        try:
            fd, file_id = supervisor.open_output(self.path("fifo"), "stdout file")
            os.close(fd)
            self.assertEqual(file_id, "-")
        finally:
            os.close(reader)

    def test_a_missing_directory_is_not_created(self):
        with self.assertRaisesRegex(supervisor.Failure, "No such file or directory"):
            supervisor.open_output(self.path("no/such/dir/out"), "stderr file")
        self.assertFalse(os.path.exists(self.path("no")))


class Users(unittest.TestCase):
    def test_root_and_an_unknown_user(self):
        root = pwd.getpwnam("root")
        answer = supervisor.lookup_user("root").decode().split()
        self.assertEqual(answer[:3], ["user", str(root.pw_uid), str(root.pw_gid)])
        self.assertIn(str(root.pw_gid), answer[3].split(","))
        self.assertEqual(bytes.fromhex(answer[4]).decode(), root.pw_dir)
        self.assertEqual(supervisor.lookup_user("no-such-user-lf"), b"nouser\n")


class Helpers(unittest.TestCase):
    def test_json_strings_escape_quotes_backslashes_and_controls(self):
        self.assertEqual(supervisor.json_string('a"b\\c\n\x01'), '"a\\"b\\\\c\\u000a\\u0001"')
        self.assertEqual(supervisor.json_pair("exitCode", 3), '"exitCode":3')

    def test_json_strings_read_back_as_written(self):
        for text in ["/tmp/job dir/é€😀", "2049:1234:0:1", "tab\there", "\x7f\u2028", "bad byte \udcff", ""]:
            self.assertEqual(json.loads(supervisor.json_string(text)), text)

    def test_a_script_without_shebang_runs_with_the_shell(self):
        self.assertEqual(supervisor.as_script("/x/s", ["s", "a"]), ["/bin/sh", "/x/s", "a"])

    def test_executables_are_found_on_the_jobs_path_only(self):
        self.assertEqual(supervisor.executable("sh", {"PATH": "/nonexistent:/bin"}), "/bin/sh")
        self.assertEqual(supervisor.executable("./rel", {}), "./rel")
        with self.assertRaisesRegex(supervisor.Failure, 'exec "sh": No such file'):
            supervisor.executable("sh", {"PATH": "/nonexistent"})

    def test_start_time_of_this_process_and_of_none(self):
        self.assertGreater(supervisor.start_time(os.getpid()), 0)
        self.assertEqual(supervisor.start_time(2**22 + 12345), 0)

    def test_is_socket(self):
        self.assertFalse(supervisor.is_socket("/nonexistent"))
        self.assertTrue(stat.S_ISDIR(os.stat("/").st_mode) and not supervisor.is_socket("/"))


if __name__ == "__main__":
    unittest.main()
