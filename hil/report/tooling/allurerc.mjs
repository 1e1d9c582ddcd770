// Allure 3 configuration of mpy-hil: `hil report`, or by hand
//   node ci/node_modules/allure/cli.js generate allure-results --config ci/allurerc.mjs
//
// Allure 3 takes categories from this file only (categories.json in the results is read by the
// Allure 2 style plugins alone), so this list repeats hil/report/results.py CATEGORIES exactly;
// tests/unit/test_report_categories.py fails when the two differ.
//
// Every mpy-hil error says whose fault it is at the end of its message: "[infrastructure fault]"
// (the rig: link, deadline, raw REPL, lease, flashing), "[product fault]" (the code under test
// raised on the board) or "[usage fault]" (an option, rack file, manifest or path is wrong). The regexes are anchored: Allure 2 matches whole messages, Allure 3
// searches, and anchoring keeps a search of a long message linear.

export const categories = [
  {
    name: "Infrastructure errors",
    description:
      "The rig failed (link, deadline, raw REPL, lease, flashing, quarantine): " +
      "not the code under test. A run may retry these.",
    matchedStatuses: ["broken", "failed"],
    messageRegex: String.raw`^[\s\S]*\[infrastructure\ fault\][\s\S]*$`,
  },
  {
    name: "Product defects",
    description: "The code under test raised on the board (RemoteError). Never retried.",
    matchedStatuses: ["broken", "failed"],
    messageRegex: String.raw`^[\s\S]*\[product\ fault\][\s\S]*$`,
  },
  {
    name: "Usage errors",
    description: "What the run was given is wrong (an option, rack file, manifest, path).",
    matchedStatuses: ["broken", "failed"],
    messageRegex: String.raw`^[\s\S]*\[usage\ fault\][\s\S]*$`,
  },
  {
    name: "Assertion failures",
    description: "An assertion of the test itself did not hold.",
    matchedStatuses: ["failed"],
    messageRegex: String.raw`^(?![\s\S]*(?:\[infrastructure\ fault\]|\[product\ fault\]|\[usage\ fault\]))[\s\S]*$`,
  },
];

export default {
  name: "mpy-hil",
  categories,
  // Earlier runs, for the trend charts: `hil report` names the file (--history, default
  // allure-history.jsonl beside the report); without it, a report of this run alone.
  historyPath: process.env.HIL_REPORT_HISTORY || undefined,
  plugins: {
    awesome: {
      options: {
        reportName: "mpy-hil",
        // One self-contained index.html: opens from disk (a report split into files fetches its
        // data, which browsers refuse to file:// pages) and is a single CI artifact.
        singleFile: true,
        // Open a test with its REPL exchanges (steps) visible.
        stepTreeExpansion: "expanded",
      },
    },
  },
};
