// Cell renderers for dash-ag-grid (loaded from assets/, referenced by name in columnDefs).
var dagcomponentfuncs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});

var FLAG_STYLE = {
  "Worsening": "text-bg-danger",
  "Not responding": "text-bg-warning",
  "Low adherence": "text-bg-warning",
  "No data 14 d": "text-bg-secondary",
  "Missing baseline": "text-bg-info",
};

dagcomponentfuncs.FlagBadges = function (props) {
  var flags = props.value || [];
  return React.createElement(
    "span",
    { className: "flag-badges" },
    flags.map(function (label) {
      return React.createElement(
        "span",
        { key: label, className: "badge fw-normal me-1 " + (FLAG_STYLE[label] || "text-bg-secondary") },
        label
      );
    })
  );
};
