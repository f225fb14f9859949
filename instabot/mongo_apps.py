"""AppConfigs of third-party apps for the MongoDB profile.

Django's admin, auth and contenttypes, and django_rq, pin `AutoField` for their models; on MongoDB every
primary key is an ObjectId (django-mongodb-backend's ObjectIdAutoField). settings.py installs these
instead of the originals when DATABASE_URL is a mongodb:// URI; their migrations live in
mongo_migrations/<label>.
"""

from django.contrib.admin.apps import AdminConfig
from django.contrib.auth.apps import AuthConfig
from django.contrib.contenttypes.apps import ContentTypesConfig
from django_rq.apps import DjangoRqAdminConfig

OBJECT_ID_AUTO_FIELD = "django_mongodb_backend.fields.ObjectIdAutoField"


class MongoAdminConfig(AdminConfig):
    default_auto_field = OBJECT_ID_AUTO_FIELD


class MongoAuthConfig(AuthConfig):
    default_auto_field = OBJECT_ID_AUTO_FIELD


class MongoContentTypesConfig(ContentTypesConfig):
    default_auto_field = OBJECT_ID_AUTO_FIELD


class MongoDjangoRqConfig(DjangoRqAdminConfig):
    default_auto_field = OBJECT_ID_AUTO_FIELD
