/* httpd/home.h: the staff and patient homes (/staff, /me). Placeholders
 * until the web views exist: they show who is signed in and a sign-out
 * button, and show how a view uses the session (httpd/session.h). */
#ifndef POSTERN_HTTPD_HOME_H
#define POSTERN_HTTPD_HOME_H

#include "httpd/http.h"

enum MHD_Result home_staff(struct http_req *r);
enum MHD_Result home_patient(struct http_req *r);

#endif
