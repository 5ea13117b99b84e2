// Cell renderers for dash-ag-grid (loaded from assets/, referenced by name in columnDefs).
var dagcomponentfuncs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});

// flag code -> [short label shown in the grid, full label on hover, badge class]
var FLAGS = {
  worsening: ["Worsening", "Worsening: leg pain or numbness up by the MCID, or SLR down", "text-bg-danger"],
  not_responding: ["No response", "Not responding: no MCID after 6 weeks or 8 visits", "text-bg-warning"],
  low_adherence: ["Low adh.", "Low adherence: under 60 % in the last 14 days", "text-bg-warning"],
  no_recent_data: ["No data 14 d", "Nothing recorded for 14 days", "text-bg-secondary"],
  missing_baseline: ["No baseline", "Missing baseline: leg pain or ODI not measured at the start", "text-bg-info"],
};

dagcomponentfuncs.FlagBadges = function (props) {
  var codes = props.value || [];
  return React.createElement(
    "span",
    { className: "flag-badges" },
    codes.map(function (code) {
      var f = FLAGS[code] || [code, code, "text-bg-secondary"];
      return React.createElement("span", { key: code, title: f[1], className: "badge fw-normal me-1 " + f[2] }, f[0]);
    })
  );
};
