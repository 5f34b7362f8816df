import { describe, expect, it } from "vitest";
import {
  ApiError,
  ConfigReloadErrorType,
  configReloadErrorString,
  ErrCode,
  ErrInvalidJobState,
  ErrJobNotFound,
  ErrJobNotRunning,
  errCodeName,
  errCodeString,
  errorIs,
  errorText,
  findApiError,
  goValue,
  httpStatusFor,
  toApiError,
} from "../../src/api/errors.js";

describe("ErrCode", () => {
  it.each([
    [ErrCode.Unknown, 0, "an error occurred", "Unknown", 500],
    [ErrCode.RequestNotSupported, 1, "not supported", "RequestNotSupported", 501],
    [ErrCode.InvalidRequest, 2, "invalid request", "InvalidRequest", 400],
    [ErrCode.JobNotFound, 3, "job not found", "JobNotFound", 404],
    [ErrCode.PluginRestarted, 4, "plugin is restarting", "PluginRestarted", 503],
    [ErrCode.Timeout, 5, "timeout", "Timeout", 504],
    [ErrCode.JobNotRunning, 6, "job not running", "JobNotRunning", 409],
    [ErrCode.JobOutputNotFound, 7, "job output not found", "JobOutputNotFound", 404],
    [ErrCode.InvalidJobState, 8, "invalid job state", "InvalidJobState", 409],
    [ErrCode.JobControlFailure, 9, "job control failure", "JobControlFailure", 500],
    [ErrCode.UnsupportedVersion, 10, "unsupported version", "UnsupportedVersion", 500],
  ])("code %i: value %i, String %j, name %j, HTTP %i", (code, value, text, name, http) => {
    expect(code).toBe(value);
    expect(errCodeString(code)).toBe(text);
    expect(errCodeName(code)).toBe(name);
    expect(httpStatusFor(code)).toBe(http);
  });

  it.each([-1, 11, 99, 1.5, Number.NaN])(
    "out-of-range %s: Go String() fallback, name Unknown, HTTP 500",
    (code) => {
      expect(errCodeString(code)).toBe("an error occurred");
      expect(errCodeName(code)).toBe("Unknown");
      expect(httpStatusFor(code as ErrCode)).toBe(500);
    },
  );
});

describe("goValue (Go's %v for a rejected request value)", () => {
  it.each([
    [null, "<nil>"],
    [undefined, "<nil>"],
    ["stop", "stop"],
    [7, "7"],
    [1.5, "1.5"],
    [true, "true"],
    [[1, "a", null], "[1 a <nil>]"],
    [{ a: 1 }, '{"a":1}'],
  ])("%j shows as %s", (value, shown) => {
    expect(goValue(value)).toBe(shown);
  });
});

describe("ApiError", () => {
  it("Error() is the message when set ({3, job not found})", () => {
    const err = new ApiError(ErrCode.JobNotFound, "job not found");
    expect(err.message).toBe("job not found");
    expect(String(err)).toBe("ApiError: job not found");
  });

  it("Error() falls back to the code's string when the message is empty", () => {
    const err = new ApiError(ErrCode.JobNotRunning);
    expect(err.msg).toBe("");
    expect(err.message).toBe("job not running");
  });

  it("is an Error with a stack", () => {
    const err = new ApiError(ErrCode.Timeout, "slow");
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("ApiError");
    expect(err.stack).toContain("slow");
  });

  it("toJSON is Go's JSON encoding: the raw Msg under message", () => {
    expect(new ApiError(ErrCode.JobNotFound, "gone").toJSON()).toEqual({ code: 3, message: "gone" });
    expect(JSON.stringify(ErrJobNotFound)).toBe('{"code":3,"message":""}');
  });

  it("toBody is the HTTP body, with name and a non-empty message", () => {
    expect(new ApiError(ErrCode.InvalidJobState, "Job must be running to stop it").toBody()).toEqual({
      code: 8,
      name: "InvalidJobState",
      message: "Job must be running to stop it",
    });
    expect(ErrJobNotFound.toBody()).toEqual({ code: 3, name: "JobNotFound", message: "job not found" });
  });

  it("keeps a cause", () => {
    const cause = new Error("root");
    expect(new ApiError(ErrCode.Unknown, "x", { cause }).cause).toBe(cause);
  });
});

describe("ApiError.is (Go Error.Is (the Launcher's semantics))", () => {
  const e = new ApiError(ErrCode.JobNotFound, "x");
  it.each([
    ["same instance", e, e, true],
    ["another instance, same code and message", e, new ApiError(3, "x"), true],
    ["same code, different messages", e, new ApiError(3, "y"), false],
    ["code-only sentinel as target", e, ErrJobNotFound, true],
    ["code-only error against a messaged target", new ApiError(3, ""), new ApiError(3, "y"), true],
    ["different codes, same message", e, new ApiError(8, "x"), false],
    ["a plain non-api error", e, new Error("x"), false],
  ])("%s → %s", (_label, err, target, expected) => {
    expect(err.is(target)).toBe(expected);
  });

  it("types_test.go: errors.Is({3,job not found},{3,different message}) is false", () => {
    expect(errorIs(new ApiError(3, "job not found"), new ApiError(3, "different message"))).toBe(false);
  });

  it.each([
    [ErrJobNotRunning, ErrCode.JobNotRunning],
    [ErrJobNotFound, ErrCode.JobNotFound],
    [ErrInvalidJobState, ErrCode.InvalidJobState],
  ])("sentinel %s is code-only and matches its code in both directions", (sentinel, code) => {
    expect(sentinel.code).toBe(code);
    expect(sentinel.msg).toBe("");
    const specific = new ApiError(code, "something specific");
    expect(specific.is(sentinel)).toBe(true);
    expect(sentinel.is(specific)).toBe(true);
    expect(new ApiError(ErrCode.Unknown, "something specific").is(sentinel)).toBe(false);
  });
});

describe("errorIs (Go errors.Is with unwrapping)", () => {
  it("matches the error itself and by identity", () => {
    expect(errorIs(ErrJobNotFound, ErrJobNotFound)).toBe(true);
  });

  it("follows cause chains through plain errors", () => {
    const wrapped = new Error("outer", { cause: new Error("middle", { cause: new ApiError(3, "job x") }) });
    expect(errorIs(wrapped, ErrJobNotFound)).toBe(true);
    expect(errorIs(wrapped, ErrInvalidJobState)).toBe(false);
  });

  it("follows AggregateError members (Go Unwrap() []error)", () => {
    const joined = new AggregateError([new Error("a"), new ApiError(ErrCode.JobNotRunning, "b")]);
    expect(errorIs(joined, ErrJobNotRunning)).toBe(true);
  });

  it("is false for non-errors and plain errors", () => {
    expect(errorIs(undefined, ErrJobNotFound)).toBe(false);
    expect(errorIs("job not found", ErrJobNotFound)).toBe(false);
    expect(errorIs(new Error("job not found"), ErrJobNotFound)).toBe(false);
  });

  it("terminates on cause cycles", () => {
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    Object.defineProperty(a, "cause", { value: b });
    expect(errorIs(a, ErrJobNotFound)).toBe(false);
  });

  it("findApiError returns the first ApiError in the chain", () => {
    const inner = new ApiError(ErrCode.Timeout, "slow");
    expect(findApiError(new Error("outer", { cause: inner }))).toBe(inner);
    expect(findApiError(new Error("plain"))).toBeUndefined();
  });
});

describe("toApiError (runtime error mapping, launcher.go WriteError)", () => {
  it("a plain error becomes Unknown with its text", () => {
    const err = toApiError(new Error("disk full"));
    expect(err.code).toBe(ErrCode.Unknown);
    expect(err.message).toBe("disk full");
  });

  it("an ApiError is returned as-is", () => {
    const original = new ApiError(ErrCode.JobNotFound, "Job 1 not found");
    expect(toApiError(original)).toBe(original);
  });

  it("a wrapped ApiError keeps its code; the message is the outer text", () => {
    const err = toApiError(
      new Error("lookup failed: job 1", { cause: new ApiError(ErrCode.JobNotFound, "job 1") }),
    );
    expect(err.code).toBe(ErrCode.JobNotFound);
    expect(err.message).toBe("lookup failed: job 1");
  });

  it("non-Error throwables become Unknown with their text", () => {
    expect(toApiError("bad thing").message).toBe("bad thing");
    expect(toApiError(42).message).toBe("42");
    expect(toApiError(Object.create(null)).code).toBe(ErrCode.Unknown);
  });

  it("errorText gives Error() text for any value", () => {
    expect(errorText(new Error("m"))).toBe("m");
    expect(errorText("s")).toBe("s");
    expect(errorText(Object.create(null))).toBe("an error occurred");
  });
});

describe("ConfigReloadErrorType.String (types_test.go)", () => {
  it.each([
    [-1, "unknown error"],
    [0, "none"],
    [1, "load error"],
    [2, "validation error"],
    [3, "save error"],
    [99, "unknown error"],
  ])("%i → %j", (type, text) => {
    expect(configReloadErrorString(type)).toBe(text);
  });

  it("has Go's values", () => {
    expect([
      ConfigReloadErrorType.Unknown,
      ConfigReloadErrorType.None,
      ConfigReloadErrorType.Load,
      ConfigReloadErrorType.Validate,
      ConfigReloadErrorType.Save,
    ]).toEqual([-1, 0, 1, 2, 3]);
  });
});
