<%@ page contentType="text/html; charset=UTF-8" %>
<%-- Demo page for specs/tomcat.kdl: the "webapp" layer copies it into webapps/ROOT/. --%>
<!DOCTYPE html>
<html>
<head>
  <meta charset="utf-8">
  <title>Hello from strata on Tomcat</title>
</head>
<body>
  <h1>Hello from strata on Tomcat</h1>
  <p>This page was added as its own image layer by strata.</p>
  <p>Server: <%= application.getServerInfo() %>, Java <%= System.getProperty("java.version") %>.</p>
  <p>Rendered at <%= new java.util.Date() %>.</p>
</body>
</html>
