// Starts ReDoc on the API's document; the page names the document in data-openapi-url.
"use strict";
(function () {
  const url = document.currentScript.dataset.openapiUrl;
  Redoc.init(url, {}, document.getElementById("redoc"));
})();
